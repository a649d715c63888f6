/**
 * last_login as Python code reading the user through Django's ORM sees it, in
 * `datetime.isoformat()` form (spec A.5): what credentials derived from it sign. The value
 * never passes through a JS Date on the way in, because Date would drop the microseconds.
 */
import { SidecastError } from '../errors.js';
import type { Dialect } from './db.js';

/** A calendar date and wall-clock time, with microseconds. */
export interface WallTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly microsecond: number;
}

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

/** datetime.isoformat(): fraction only when microsecond != 0, offset only for aware values. */
export function isoformat(time: WallTime, offset: string): string {
  const date = `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)}`;
  const clock = `${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}`;
  const fraction = time.microsecond === 0 ? '' : `.${pad(time.microsecond, 6)}`;
  return `${date}T${clock}${fraction}${offset}`;
}

/** str(naive datetime): what Django's MySQL and SQLite backends write into a datetime column. */
export function storageText(time: WallTime): string {
  return isoformat(time, '').replace('T', ' ');
}

// django.utils.dateparse.datetime_re: seconds and fraction optional, "T" or space, optional zone.
const DATETIME_RE =
  /^(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,6})\d{0,6})?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/;

function normalizeOffset(zone: string): string {
  if (zone === 'Z') return '+00:00';
  const digits = zone.slice(1).replace(':', '');
  return `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2, 4) || '00'}`;
}

/**
 * The isoformat Django would produce from last_login as read by lastLoginExpression():
 * naive text gets "+00:00" when USE_TZ (the connection time zone is UTC), nothing otherwise.
 */
export function isoformatFromDb(text: unknown, useTz: boolean): string | null {
  if (text === null || text === undefined) return null;
  const match = DATETIME_RE.exec(String(text).trim());
  if (match === null) {
    throw new SidecastError('DB_SCHEMA', `last_login holds "${String(text)}", not a datetime`);
  }
  const [, year, month, day, hour, minute, second, fraction, zone] = match;
  const time: WallTime = {
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hour),
    minute: Number(minute),
    second: Number(second ?? 0),
    microsecond: Number((fraction ?? '').padEnd(6, '0')),
  };
  const offset = zone !== undefined ? normalizeOffset(zone) : useTz ? '+00:00' : '';
  return isoformat(time, offset);
}

/**
 * SQL reading `column` as text. PostgreSQL stores an instant, shown in UTC when USE_TZ and in
 * TIME_ZONE otherwise (Django's connection time zone); MySQL and SQLite store wall time as is.
 */
export function lastLoginExpression(
  dialect: Dialect,
  column: string,
  useTz: boolean,
  timeZone: string,
): string {
  if (dialect === 'postgres') {
    const zone = useTz ? 'UTC' : timeZone;
    return `to_char(${column} AT TIME ZONE '${zone.replaceAll("'", "''")}', 'YYYY-MM-DD"T"HH24:MI:SS.US')`;
  }
  if (dialect === 'mysql') return `DATE_FORMAT(${column}, '%Y-%m-%dT%H:%i:%s.%f')`;
  return column;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new SidecastError('CONFIG_INVALID', `TIME_ZONE: unknown time zone "${timeZone}"`);
    }
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Fails at start rather than at the first one-time login. */
export function checkTimeZone(timeZone: string): void {
  formatterFor(timeZone);
}

/** The wall time of an instant (microseconds since the epoch) in `timeZone`. */
export function wallTime(epochMicros: bigint, timeZone = 'UTC'): WallTime {
  const microsecond = Number(((epochMicros % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const millis = Number((epochMicros - BigInt(microsecond)) / 1000n);
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(millis))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year ?? 0,
    month: parts.month ?? 0,
    day: parts.day ?? 0,
    hour: parts.hour ?? 0,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
    microsecond,
  };
}

/** Now, in microseconds since the epoch, as timezone.now() would give it. */
export function nowMicros(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}
