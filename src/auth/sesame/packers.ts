/**
 * django-sesame packers: how a user's primary key is written at the start of a v2 token.
 * Each packer mirrors one class of `sesame.packers`, byte for byte (spec A.3).
 */
import type { FieldType, PkValue } from '../../django/fields.js';
import { SidecastError } from '../../errors.js';

export interface UnpackedPk {
  readonly value: PkValue;
  /** The bytes after the primary key: timestamp (if any) and signature. */
  readonly rest: Uint8Array;
}

export interface Packer {
  /** The django-sesame class name, e.g. "LongPacker". */
  readonly name: string;
  /** Throws SidecastError('CONFIG_INVALID') when the value cannot be represented. */
  pack(value: PkValue): Uint8Array;
  /** Never throws: null is Python's "cannot extract primary key". */
  unpack(data: Uint8Array): UnpackedPk | null;
}

function unpackable(packer: string, value: PkValue, why: string): SidecastError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new SidecastError('CONFIG_INVALID', `${packer} cannot pack primary key ${shown}: ${why}`);
}

/** struct formats !h !H !l !L !q !Q: fixed-size big-endian two's complement. */
function createIntegerPacker(name: string, size: number, signed: boolean): Packer {
  const bits = BigInt(size * 8);
  const min = signed ? -(1n << (bits - 1n)) : 0n;
  const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  return Object.freeze({
    name,
    pack(value: PkValue): Uint8Array {
      if (typeof value !== 'bigint') throw unpackable(name, value, 'not an integer');
      if (value < min || value > max) throw unpackable(name, value, `outside ${min}..${max}`);
      let rest = value < 0n ? value + (1n << bits) : value;
      const out = new Uint8Array(size);
      for (let i = size - 1; i >= 0; i -= 1) {
        out[i] = Number(rest & 0xffn);
        rest >>= 8n;
      }
      return out;
    },
    unpack(data: Uint8Array): UnpackedPk | null {
      if (data.length < size) return null;
      let value = 0n;
      for (let i = 0; i < size; i += 1) value = (value << 8n) | BigInt(data[i] ?? 0);
      if (signed && value > max) value -= 1n << bits;
      return { value, rest: data.subarray(size) };
    },
  });
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** UUID.bytes: the 16 bytes in RFC 4122 order; unpacking gives str(UUID). */
const uuidPacker: Packer = Object.freeze({
  name: 'UUIDPacker',
  pack(value: PkValue): Uint8Array {
    // Accept the dashed form and the 32-hex form MySQL and SQLite store.
    const hex = typeof value === 'string' ? value.replaceAll('-', '') : '';
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw unpackable('UUIDPacker', value, 'not a UUID');
    return Uint8Array.from(Buffer.from(hex, 'hex'));
  },
  unpack(data: Uint8Array): UnpackedPk | null {
    if (data.length < 16) return null;
    const hex = Array.from(data.subarray(0, 16), (byte) => HEX_BYTE[byte]).join('');
    const value = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    return { value, rest: data.subarray(16) };
  },
});

/**
 * One length byte, then the bytes. A length byte larger than what follows is not an error in
 * Python: the slice just takes everything, and the signature length check fails later.
 */
function splitLengthPrefixed(data: Uint8Array): { body: Uint8Array; rest: Uint8Array } | null {
  const length = data[0];
  if (length === undefined) return null;
  return { body: data.slice(1, 1 + length), rest: data.subarray(1 + length) };
}

function lengthPrefixed(packer: string, value: PkValue, body: Uint8Array): Uint8Array {
  if (body.length > 255) throw unpackable(packer, value, `${body.length} bytes, at most 255`);
  const out = new Uint8Array(1 + body.length);
  out[0] = body.length;
  out.set(body, 1);
  return out;
}

const bytesPacker: Packer = Object.freeze({
  name: 'BytesPacker',
  pack(value: PkValue): Uint8Array {
    if (!(value instanceof Uint8Array)) throw unpackable('BytesPacker', value, 'not bytes');
    return lengthPrefixed('BytesPacker', value, value);
  },
  unpack(data: Uint8Array): UnpackedPk | null {
    const split = splitLengthPrefixed(data);
    return split === null ? null : { value: split.body, rest: split.rest };
  },
});

// Python's bytes.decode() is strict and keeps a leading BOM as U+FEFF.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();
// With the u flag a lone surrogate is one Cs code point; Python refuses to encode it.
const LONE_SURROGATE = /\p{Cs}/u;

const strPacker: Packer = Object.freeze({
  name: 'StrPacker',
  pack(value: PkValue): Uint8Array {
    if (typeof value !== 'string') throw unpackable('StrPacker', value, 'not a string');
    if (LONE_SURROGATE.test(value)) throw unpackable('StrPacker', value, 'not valid Unicode');
    return lengthPrefixed('StrPacker', value, utf8.encode(value));
  },
  unpack(data: Uint8Array): UnpackedPk | null {
    const split = splitLengthPrefixed(data);
    if (split === null) return null;
    try {
      return { value: strictUtf8.decode(split.body), rest: split.rest };
    } catch {
      return null;
    }
  },
});

const shortPacker = createIntegerPacker('ShortPacker', 2, true);
const longPacker = createIntegerPacker('LongPacker', 4, true);
const unsignedLongPacker = createIntegerPacker('UnsignedLongPacker', 4, false);
const longLongPacker = createIntegerPacker('LongLongPacker', 8, true);

/** Class names in `sesame.packers`, including its backwards-compatible aliases. */
const PACKERS_BY_CLASS: ReadonlyMap<string, Packer> = new Map([
  ['ShortPacker', shortPacker],
  ['UnsignedShortPacker', createIntegerPacker('UnsignedShortPacker', 2, false)],
  ['LongPacker', longPacker],
  ['IntPacker', longPacker],
  ['UnsignedLongPacker', unsignedLongPacker],
  ['UnsignedIntPacker', unsignedLongPacker],
  ['LongLongPacker', longLongPacker],
  ['UnsignedLongLongPacker', createIntegerPacker('UnsignedLongLongPacker', 8, false)],
  ['UUIDPacker', uuidPacker],
  ['BytesPacker', bytesPacker],
  ['StrPacker', strPacker],
]);

const PACKER_CLASS_BY_FIELD: ReadonlyMap<string, string> = new Map([
  ['SmallAutoField', 'ShortPacker'],
  ['SmallIntegerField', 'ShortPacker'],
  ['PositiveSmallIntegerField', 'UnsignedShortPacker'],
  ['AutoField', 'LongPacker'],
  ['IntegerField', 'LongPacker'],
  ['PositiveIntegerField', 'UnsignedLongPacker'],
  ['BigAutoField', 'LongLongPacker'],
  ['BigIntegerField', 'LongLongPacker'],
  ['PositiveBigIntegerField', 'UnsignedLongLongPacker'],
  ['UUIDField', 'UUIDPacker'],
  ['BinaryField', 'BytesPacker'],
  ['CharField', 'StrPacker'],
  ['TextField', 'StrPacker'],
]);

const PACKER_MODULE = 'sesame.packers.';

/** The packer django-sesame picks for a field's get_internal_type(). */
export function packerForField(type: FieldType): Packer {
  // The type is checked at run time too: it usually comes from database introspection.
  const packer = PACKERS_BY_CLASS.get(PACKER_CLASS_BY_FIELD.get(type) ?? '');
  if (packer === undefined) {
    throw new SidecastError('CONFIG_INVALID', `${String(type)} primary keys aren't supported`);
  }
  return packer;
}

/** The packer named by SESAME_PACKER; only django-sesame's own classes can be mirrored. */
export function packerForPath(dottedPath: string): Packer {
  const className = dottedPath.startsWith(PACKER_MODULE)
    ? dottedPath.slice(PACKER_MODULE.length)
    : '';
  const packer = PACKERS_BY_CLASS.get(className);
  if (packer === undefined) {
    throw new SidecastError(
      'CONFIG_INVALID',
      `SESAME_PACKER ${JSON.stringify(dottedPath)} is not one of django-sesame's packers ` +
        `(${[...PACKERS_BY_CLASS.keys()].map((name) => PACKER_MODULE + name).join(', ')})`,
    );
  }
  return packer;
}

/** SESAME_PACKER when set, otherwise the automatic choice from the field type. */
export function selectPacker(configuredPath: string | null, fieldType: FieldType): Packer {
  return configuredPath === null ? packerForField(fieldType) : packerForPath(configuredPath);
}
