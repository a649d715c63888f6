/**
 * Turns pg, mysql2 and better-sqlite3 failures into SidecastErrors with one clear line.
 * DB_UNAVAILABLE tells callers to retry later; DB_SCHEMA means the database is not the Django
 * database we expect (wrong URL, migrations not run, wrong AUTH_USER_MODEL).
 */
import { SidecastError } from '../errors.js';

interface DriverErrorFields {
  code?: unknown;
  message?: unknown;
  fatal?: unknown;
  errors?: unknown;
}

const NETWORK_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
};

/** PostgreSQL SQLSTATEs and mysql2 codes that mean "cannot talk to the database right now". */
const UNAVAILABLE_CODES = new Set([
  '28000', // invalid authorization
  '28P01', // password authentication failed
  '3D000', // database does not exist
  '53300', // too many connections
  '57P01', // admin shutdown
  '57P02', // crash shutdown
  '57P03', // cannot connect now (starting up)
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_CON_COUNT_ERROR',
  'SQLITE_CANTOPEN',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_NOTADB',
  'SQLITE_PERM',
  'SQLITE_READONLY',
]);

const SCHEMA_CODES = new Set([
  '42P01', // undefined_table
  '42703', // undefined_column
  'ER_NO_SUCH_TABLE',
  'ER_BAD_FIELD_ERROR',
]);

function fieldsOf(error: unknown): DriverErrorFields {
  return typeof error === 'object' && error !== null ? (error as DriverErrorFields) : {};
}

function codeOf(error: unknown): string | undefined {
  const fields = fieldsOf(error);
  if (typeof fields.code === 'string') return fields.code;
  // Node's happy-eyeballs connect rejects with an AggregateError whose parts carry the code.
  if (Array.isArray(fields.errors)) {
    for (const inner of fields.errors) {
      const code = codeOf(inner);
      if (code !== undefined) return code;
    }
  }
  return undefined;
}

function messageOf(error: unknown): string {
  const message = fieldsOf(error).message;
  const text = typeof message === 'string' ? message : String(error);
  return text.split('\n')[0]?.trim() || 'unknown error';
}

/** A short reason for a driver failure, with the password removed should a driver echo it. */
export function describeDbError(error: unknown, password = ''): string {
  const code = codeOf(error);
  let reason = (code !== undefined && NETWORK_REASONS[code]) || messageOf(error);
  if (password.length >= 4) reason = reason.split(password).join('***');
  return reason;
}

export type DbFailureKind = 'unavailable' | 'schema' | 'query';

export function classifyDbError(error: unknown): DbFailureKind {
  const code = codeOf(error);
  const message = messageOf(error);
  if (code !== undefined && SCHEMA_CODES.has(code)) return 'schema';
  if (/^no such (table|column)/.test(message)) return 'schema';
  if (code !== undefined && (NETWORK_REASONS[code] !== undefined || UNAVAILABLE_CODES.has(code))) {
    return 'unavailable';
  }
  if (code?.startsWith('08') || code?.startsWith('SQLITE_IOERR')) return 'unavailable';
  if (fieldsOf(error).fatal === true) return 'unavailable';
  if (
    /Connection terminated|timeout exceeded when trying to connect|Cannot open database/.test(
      message,
    )
  ) {
    return 'unavailable';
  }
  return 'query';
}

/** The SidecastError for a failed connection or statement on the database at `location`. */
export function toDbError(error: unknown, location: string, password = ''): SidecastError {
  if (error instanceof SidecastError) return error;
  const reason = describeDbError(error, password);
  switch (classifyDbError(error)) {
    case 'unavailable':
      return new SidecastError('DB_UNAVAILABLE', `cannot reach database ${location}: ${reason}`, {
        cause: error,
      });
    case 'schema':
      return new SidecastError(
        'DB_SCHEMA',
        `database ${location} does not have the expected Django tables: ${reason}`,
        { cause: error },
      );
    default:
      return new SidecastError(
        'DB_UNAVAILABLE',
        `query failed on database ${location}: ${reason}`,
        {
          cause: error,
        },
      );
  }
}
