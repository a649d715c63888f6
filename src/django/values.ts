/**
 * Conversions between what the drivers return or accept and the values Django works with:
 * key columns (integers, UUIDs native or as 32 hex digits, text, bytes) and booleans.
 */
import type { Dialect } from './db.js';
import type { FieldType, PkValue } from './fields.js';
import type { KeyEncoding } from './user-model.js';

/** Booleans arrive as true, 1 (MySQL, SQLite) or, from some drivers, '1' / 't'. */
export function truthy(value: unknown): boolean {
  return value === true || value === 1 || value === 1n || value === '1' || value === 't';
}

const BITS: Partial<Record<FieldType, bigint>> = {
  SmallAutoField: 16n,
  SmallIntegerField: 16n,
  PositiveSmallIntegerField: 16n,
  AutoField: 32n,
  IntegerField: 32n,
  PositiveIntegerField: 32n,
  BigAutoField: 64n,
  BigIntegerField: 64n,
  PositiveBigIntegerField: 64n,
};

/** connection.ops.integer_field_range: signed, Positive* from 0; MySQL's Positive* are UNSIGNED. */
function inIntegerRange(value: bigint, type: FieldType, dialect: Dialect): boolean {
  const bits = BITS[type] ?? 64n;
  const positive = type.startsWith('Positive');
  const min = positive ? 0n : -(1n << (bits - 1n));
  const max = positive && dialect === 'mysql' ? (1n << bits) - 1n : (1n << (bits - 1n)) - 1n;
  return value >= min && value <= max;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The value to bind for a key column, or null when no row can match it. */
export function keyParam(
  value: PkValue,
  encoding: KeyEncoding,
  type: FieldType,
  dialect: Dialect,
): unknown {
  switch (encoding) {
    case 'integer':
      if (typeof value !== 'bigint') return null;
      return inIntegerRange(value, type, dialect) ? value : null;
    case 'uuid':
    case 'uuid-hex': {
      if (typeof value !== 'string' || !UUID_RE.test(value.toLowerCase())) return null;
      const dashed = value.toLowerCase();
      return encoding === 'uuid' ? dashed : dashed.replaceAll('-', '');
    }
    case 'text':
      return typeof value === 'string' ? value : null;
    case 'binary':
      return value instanceof Uint8Array ? value : null;
  }
}

/** A key column value as a PkValue, the form credentials decode keys into. */
export function keyValue(raw: unknown, encoding: KeyEncoding): PkValue {
  switch (encoding) {
    case 'integer':
      return BigInt(String(raw));
    case 'uuid':
    case 'uuid-hex': {
      const hex = String(raw).toLowerCase().replaceAll('-', '');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    case 'text':
      return String(raw);
    case 'binary':
      return raw instanceof Uint8Array
        ? new Uint8Array(raw)
        : new TextEncoder().encode(String(raw));
  }
}

export function keyText(value: PkValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  return Buffer.from(value).toString('hex');
}

/** The user's pk bound for later statements, from its text form (DjangoUser.pk). */
export function pkFromText(pk: string, encoding: KeyEncoding): unknown {
  switch (encoding) {
    case 'integer':
      return BigInt(pk);
    case 'uuid-hex':
      return pk.replaceAll('-', '');
    case 'binary':
      return Buffer.from(pk, 'hex');
    default:
      return pk;
  }
}

/**
 * A key sent as text (a session's user id, a token's claim) as the field's to_python reads it:
 * integers as int() does, UUIDs in any form uuid.UUID() takes; null where Django would raise.
 */
export function keyFromText(raw: string, encoding: KeyEncoding): PkValue | null {
  switch (encoding) {
    case 'integer': {
      const digits = raw.trim().replaceAll('_', '');
      return /^[+-]?\d+$/.test(digits) ? BigInt(digits) : null;
    }
    case 'uuid':
    case 'uuid-hex': {
      const hex = raw
        .trim()
        .toLowerCase()
        .replace(/^urn:uuid:/, '')
        .replace(/[{}-]/g, '');
      if (!/^[0-9a-f]{32}$/.test(hex)) return null;
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    case 'text':
      return raw;
    case 'binary':
      return null;
  }
}
