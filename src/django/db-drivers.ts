/**
 * The three DjangoDb adapters. Drivers are imported lazily so that a PostgreSQL deployment never
 * loads the native SQLite module, and the reverse.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { DatabaseUrl, DjangoDb } from './db.js';
import { toDbError } from './db-errors.js';

export interface DriverSettings {
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
}

/** Rewrites `?` placeholders as `$1, $2, ...` for PostgreSQL, leaving quoted text alone. */
export function toNumberedPlaceholders(sql: string): string {
  let out = '';
  let quote: string | null = null;
  let n = 0;
  for (const ch of sql) {
    if (quote !== null) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      n += 1;
      out += `$${n}`;
    } else {
      out += ch;
    }
  }
  return out;
}

function quoteDouble(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

function quoteBacktick(identifier: string): string {
  return `\`${identifier.replaceAll('`', '``')}\``;
}

function asBuffer(value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value)
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    : value;
}

/** Runs `close` once, however often it is called. */
function once(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | null = null;
  return () => (closing ??= close());
}

export async function openPostgres(url: DatabaseUrl, settings: DriverSettings): Promise<DjangoDb> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url.target,
    max: settings.poolSize,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    application_name: 'sidecast',
  });
  // An idle client losing its server emits 'error' on the pool; unhandled, it would end the
  // process. The next query reports the outage instead.
  pool.on('error', () => undefined);
  // Each distinct statement is prepared once per connection (named), then only executed: in
  // an authentication storm this nearly doubles throughput. After a migration changes a
  // column type, PostgreSQL refuses the old plans (0A000); new names make them prepare again.
  const statements = new Map<string, { id: number | null; text: string }>();
  let generation = 0;

  function run(sql: string, values: unknown[]): Promise<{ rows: unknown[] }> {
    let statement = statements.get(sql);
    if (statement === undefined) {
      // Past 256 distinct statements (never reached by sidecast itself), stop naming new ones.
      const id = statements.size < 256 ? statements.size : null;
      statement = { id, text: toNumberedPlaceholders(sql) };
      if (id !== null) statements.set(sql, statement);
    }
    const name = statement.id === null ? undefined : `sidecast_${generation}_${statement.id}`;
    return pool.query({ name, text: statement.text, values });
  }

  return {
    dialect: 'postgres',
    location: url.location,
    async query<T extends object>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      const values = params.map(asBuffer);
      try {
        return (await run(sql, values)).rows as T[];
      } catch (error) {
        if ((error as { code?: unknown }).code !== '0A000') {
          throw toDbError(error, url.location, url.password);
        }
        generation += 1;
      }
      try {
        return (await run(sql, values)).rows as T[];
      } catch (error) {
        throw toDbError(error, url.location, url.password);
      }
    },
    quote: quoteDouble,
    close: once(() => pool.end()),
  };
}

export async function openMysql(url: DatabaseUrl, settings: DriverSettings): Promise<DjangoDb> {
  const { default: mysql } = await import('mysql2/promise');
  const pool = mysql.createPool({
    uri: url.target,
    connectionLimit: settings.poolSize,
    connectTimeout: settings.connectTimeoutMs,
    // BIGINT pks must not pass through a float; dates are never parsed into a JS Date.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    charset: 'utf8mb4',
  });
  return {
    dialect: 'mysql',
    location: url.location,
    async query<T extends object>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      const values = params.map((value) =>
        typeof value === 'bigint' ? value.toString() : asBuffer(value),
      );
      try {
        const [result] = await pool.query(sql, values);
        return Array.isArray(result) ? (result as unknown as T[]) : [];
      } catch (error) {
        throw toDbError(error, url.location, url.password);
      }
    },
    quote: quoteBacktick,
    close: once(() => pool.end()),
  };
}

function fromSqliteValue(value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

function toSqliteValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return asBuffer(value);
}

/**
 * better-sqlite3 is synchronous. Django's SQLite queries here are point lookups on a local file,
 * so running them inline costs less than a worker round trip would.
 */
export async function openSqlite(url: DatabaseUrl, settings: DriverSettings): Promise<DjangoDb> {
  const { default: Database } = await import('better-sqlite3');
  let db: BetterSqlite3.Database;
  try {
    // fileMustExist: a typo in the path must fail, not create an empty database.
    db = new Database(url.target, { fileMustExist: true, timeout: settings.connectTimeoutMs });
    // Integers come back as bigint so that 64-bit pks survive; fromSqliteValue narrows them.
    db.defaultSafeIntegers(true);
  } catch (error) {
    throw toDbError(error, url.location);
  }
  const statements = new Map<string, BetterSqlite3.Statement<unknown[]>>();
  return {
    dialect: 'sqlite',
    location: url.location,
    async query<T extends object>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      try {
        let statement = statements.get(sql);
        if (statement === undefined) {
          statement = db.prepare<unknown[]>(sql);
          if (statements.size < 256) statements.set(sql, statement);
        }
        const values = params.map(toSqliteValue);
        if (!statement.reader) {
          statement.run(...values);
          return [];
        }
        const rows = statement.all(...values) as Record<string, unknown>[];
        for (const row of rows) {
          for (const key of Object.keys(row)) row[key] = fromSqliteValue(row[key]);
        }
        return rows as T[];
      } catch (error) {
        throw toDbError(error, url.location);
      }
    },
    quote: quoteDouble,
    close: once(async () => {
      db.close();
    }),
  };
}
