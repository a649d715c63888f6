/**
 * One small query interface over the three databases Django projects use. Everything above this
 * module writes SQL with `?` placeholders and sees rows as plain objects; only this module and
 * db-drivers.ts know about pg, mysql2 and better-sqlite3.
 */
import { SidecastError } from '../errors.js';
import { openMysql, openPostgres, openSqlite } from './db-drivers.js';

export type Dialect = 'postgres' | 'mysql' | 'sqlite';

export interface DjangoDb {
  readonly dialect: Dialect;
  /** The URL without user or password, safe for messages and logs. */
  readonly location: string;
  /**
   * Runs one statement with `?` placeholders. Rows come back as objects keyed by column name.
   * Integers arrive as numbers, or as decimal strings when 64-bit (pg int8, mysql BIGINT) or,
   * on SQLite, beyond 2^53. Statements that return no rows resolve to [].
   * Failures reject with SidecastError DB_UNAVAILABLE (connection, timeout, anything unknown)
   * or DB_SCHEMA (missing table or column).
   */
  query<T extends object>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Quotes an identifier for this dialect. */
  quote(identifier: string): string;
  close(): Promise<void>;
}

export interface OpenDjangoDbOptions {
  /** Connections kept by the pool (pg, mysql). Default 10. */
  readonly poolSize?: number;
  /** How long to wait for a connection, or for a locked SQLite file. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
}

export interface DatabaseUrl {
  readonly dialect: Dialect;
  /** What the driver receives: the URL itself, or the file path for SQLite. */
  readonly target: string;
  readonly location: string;
  /** Scrubbed from every driver message, in case a driver ever echoes it. */
  readonly password: string;
}

const EXPECTED = 'expected postgres://, mysql:// or sqlite:///...';

const SCHEMES: Readonly<Record<string, Dialect>> = {
  postgres: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
  sqlite: 'sqlite',
};

/** Parses a database URL without ever putting its password in an error message. */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1];
  if (scheme === undefined) {
    throw new SidecastError('CONFIG_INVALID', `database URL has no scheme (${EXPECTED})`);
  }
  const dialect = SCHEMES[scheme.toLowerCase()];
  if (dialect === undefined) {
    throw new SidecastError(
      'CONFIG_INVALID',
      `unknown database URL scheme "${scheme}:" (${EXPECTED})`,
    );
  }
  if (dialect === 'sqlite') {
    // sqlite:///abs/path and the dj-database-url spelling sqlite:////abs/path both mean /abs/path.
    const match = /^[^:]+:\/\/(\/.*)$/.exec(url);
    const path = match?.[1] === undefined ? '' : decodeURIComponent(match[1].replace(/^\/+/, '/'));
    if (path.length < 2) {
      throw new SidecastError(
        'CONFIG_INVALID',
        'a SQLite database URL needs an absolute path: sqlite:///absolute/path.sqlite3',
      );
    }
    return { dialect, target: path, location: `sqlite://${path}`, password: '' };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SidecastError('CONFIG_INVALID', `invalid ${scheme}: database URL (${EXPECTED})`);
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) {
    throw new SidecastError('CONFIG_INVALID', `the ${scheme}: database URL has no host`);
  }
  const port = parsed.port === '' ? '' : `:${parsed.port}`;
  return {
    dialect,
    target: url,
    location: `${scheme.toLowerCase()}://${parsed.hostname}${port}${parsed.pathname}`,
    password: decodeURIComponent(parsed.password),
  };
}

/** Opens a pool (or the SQLite file) and proves it answers, so misconfiguration fails at start. */
export async function openDjangoDb(
  url: string,
  options: OpenDjangoDbOptions = {},
): Promise<DjangoDb> {
  const parsed = parseDatabaseUrl(url);
  const settings = {
    poolSize: options.poolSize ?? 10,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
  };
  const open =
    parsed.dialect === 'postgres'
      ? openPostgres
      : parsed.dialect === 'mysql'
        ? openMysql
        : openSqlite;
  const db = await open(parsed, settings);
  try {
    await db.query('SELECT 1 AS ok');
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  return db;
}
