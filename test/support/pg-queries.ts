/**
 * Counts the statements this process sends to one PostgreSQL database through `pg` (which
 * sidecast servers started in the test process use): every one still runs on the real database,
 * the counter only notes it on the way. Servers in other processes are not seen.
 */
import pg from 'pg';

export interface CountedQuery {
  readonly text: string;
  /** How many parameters it was sent with (an IN list of n users has n or 2n). */
  readonly params: number;
}

export interface QueryCounter {
  /** Every statement sent to the database since the counter started or was last reset. */
  readonly queries: readonly CountedQuery[];
  reset(): void;
  /** Puts the driver back as it was. */
  stop(): void;
}

type Query = (this: pg.Client, ...args: unknown[]) => unknown;

function describeQuery(config: unknown, values: unknown): CountedQuery {
  if (typeof config === 'string') {
    return { text: config, params: Array.isArray(values) ? values.length : 0 };
  }
  const { text, values: own } = (config ?? {}) as { text?: unknown; values?: unknown };
  const params = Array.isArray(own) ? own : values;
  return { text: String(text), params: Array.isArray(params) ? params.length : 0 };
}

export function countPostgresQueries(database: string): QueryCounter {
  const prototype = pg.Client.prototype as unknown as { query: Query };
  const original = prototype.query;
  const queries: CountedQuery[] = [];
  prototype.query = function (this: pg.Client, ...args: unknown[]) {
    if (this.database === database) queries.push(describeQuery(args[0], args[1]));
    return original.apply(this, args);
  };
  return {
    queries,
    reset: () => void queries.splice(0),
    stop() {
      prototype.query = original;
    },
  };
}

/**
 * The statements about users, without reloads of the content type index (once per process per
 * 30 s, whoever is connected), which may fall into any window.
 */
export function userQueries(queries: readonly CountedQuery[]): CountedQuery[] {
  return queries.filter((query) => !/^SELECT id, app_label, model FROM\b/.test(query.text));
}

const ADMIN = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

/**
 * What PostgreSQL itself counts for one database: committed plus rolled-back transactions
 * (pg_stat_database), and the backends connected to it. A backend publishes its counts at most
 * once a second while busy, and always when it exits: read them once every backend that worked
 * on the database has disconnected.
 */
export interface DatabaseActivity {
  transactions(): Promise<number>;
  backends(): Promise<number>;
  close(): Promise<void>;
}

export async function watchDatabase(database: string): Promise<DatabaseActivity> {
  const admin = new pg.Client(ADMIN);
  await admin.connect();
  const one = async (sql: string): Promise<number> => {
    const { rows } = await admin.query<{ n: string }>(sql, [database]);
    return Number(rows[0]?.n ?? 0);
  };
  return {
    transactions: () =>
      one('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1'),
    backends: () => one('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1'),
    close: () => admin.end(),
  };
}
