/**
 * django-sesame v2 tokens without a database: parse and check a token in two steps around the
 * user lookup, the way sesame.tokens_v2.parse_token does (spec A.7, A.8), and create them.
 */
import { timingSafeEqual } from 'node:crypto';
import type { PkValue } from '../../django/fields.js';
import { SidecastError } from '../../errors.js';
import { assertSignatureSize, deriveVerificationKeys, sign, type KeyDerivation } from './keys.js';
import type { Packer } from './packers.js';
import { revocationKey, type SesameUser } from './revocation.js';
import type { DjangoSesameSettings, SesameSettings } from './settings.js';

export { revocationKey, type SesameUser } from './revocation.js';

/** 2020-01-01T00:00:00Z: v2 timestamps count seconds from here. */
export const TIMESTAMP_OFFSET = 1577836800;

const V2_TOKEN = /^[A-Za-z0-9_-]{4,}$/;

/**
 * The longest token django-sesame's own packers can make: 1 + 255 pk bytes, a 4-byte timestamp
 * and a 64-byte signature, 324 bytes in base64. Longer input is refused before decoding it.
 */
export const MAX_TOKEN_LENGTH = 432;

/**
 * Tokens of django-sesame < 2.0 always hold a colon. sidecast does not accept them, unlike
 * Python with the default SESAME_TOKENS; this only names the reason in logs.
 */
export function looksLikeV1Token(token: string): boolean {
  return token.includes(':');
}

export type DecodeResult =
  | { ok: true; pk: PkValue; signed: Uint8Array; signature: Uint8Array }
  | { ok: false; reason: string };

export interface DecodeOptions {
  /** get_user()'s max_age argument, in seconds; ignored when SESAME_MAX_AGE is None. */
  maxAge?: number;
}

export interface TokenCodec {
  /** Step 1, before any database work: format, base64url, pk, timestamp, length, expiry. */
  decode(token: string, nowSeconds: number, options?: DecodeOptions): DecodeResult;
  /** Step 2 after the user is fetched: constant-time compare against every verification key (secret key then fallbacks). */
  verify(
    decoded: { signed: Uint8Array; signature: Uint8Array },
    user: SesameUser,
    scope: string,
  ): boolean;
  /** What sesame.utils.get_token(user, scope) returns at nowSeconds (used by `sidecast token`). */
  create(pk: PkValue, user: SesameUser, scope: string, nowSeconds: number): string;
}

export interface TokenCodecOptions {
  /** Which django-sesame release the project runs; 'current' (3.1+) unless told otherwise. */
  derivation?: KeyDerivation;
}

const utf8 = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function rejected(reason: string): DecodeResult {
  return { ok: false, reason };
}

class SesameTokenCodec implements TokenCodec {
  readonly #sesame: SesameSettings;
  readonly #packer: Packer;
  readonly #keys: readonly Uint8Array[];
  readonly #signingKey: Uint8Array;
  readonly #signatureSize: number;
  readonly #timestampSize: number;

  constructor(django: DjangoSesameSettings, packer: Packer, derivation: KeyDerivation) {
    assertSignatureSize(django.sesame.signatureSize);
    this.#sesame = django.sesame;
    this.#packer = packer;
    // Derived once: every token is checked against the same keys.
    this.#keys = Object.freeze(deriveVerificationKeys(django, derivation));
    this.#signingKey = this.#keys[0];
    this.#signatureSize = django.sesame.signatureSize;
    this.#timestampSize = django.sesame.maxAge === null ? 0 : 4;
  }

  decode(token: string, nowSeconds: number, options: DecodeOptions = {}): DecodeResult {
    if (typeof token !== 'string') return rejected("doesn't match a supported format");
    if (!V2_TOKEN.test(token)) {
      return rejected(
        looksLikeV1Token(token)
          ? 'v1 tokens are not supported'
          : "doesn't match a supported format",
      );
    }
    if (token.length > MAX_TOKEN_LENGTH) return rejected('token too long');
    // Node drops a dangling sixth-bit character; Python refuses the whole token.
    if (token.length % 4 === 1) return rejected('cannot decode token');
    const data = Uint8Array.from(Buffer.from(token, 'base64url'));

    const unpacked = this.#packer.unpack(data);
    if (unpacked === null) return rejected('cannot extract primary key');
    const afterPk = unpacked.rest;
    if (afterPk.length < this.#timestampSize) return rejected('cannot extract timestamp');
    if (afterPk.length - this.#timestampSize !== this.#signatureSize) {
      return rejected('cannot extract signature');
    }

    const maxAge = this.#sesame.maxAge;
    if (maxAge !== null) {
      if (!Number.isFinite(nowSeconds)) return rejected('no usable clock');
      const view = new DataView(afterPk.buffer, afterPk.byteOffset, afterPk.byteLength);
      const age = Math.trunc(nowSeconds) - TIMESTAMP_OFFSET - view.getInt32(0);
      // A token from the future (negative age) is accepted, as in Python.
      if (age >= (options.maxAge ?? maxAge)) return rejected(`expired token: age = ${age} seconds`);
    }

    const split = data.length - this.#signatureSize;
    return {
      ok: true,
      pk: unpacked.value,
      signed: data.slice(0, split),
      signature: data.slice(split),
    };
  }

  verify(
    decoded: { signed: Uint8Array; signature: Uint8Array },
    user: SesameUser,
    scope: string,
  ): boolean {
    if (decoded.signature.length !== this.#signatureSize) return false;
    let revocation: string;
    try {
      revocation = revocationKey(user, this.#sesame);
    } catch {
      return false;
    }
    const message = concat(decoded.signed, utf8.encode(revocation), utf8.encode(scope));
    let valid = false;
    for (const key of this.#keys) {
      const expected = sign(message, key, this.#signatureSize);
      // No early exit: the time taken does not tell which key matched.
      if (timingSafeEqual(expected, decoded.signature)) valid = true;
    }
    return valid;
  }

  create(pk: PkValue, user: SesameUser, scope: string, nowSeconds: number): string {
    const packedPk = this.#packer.pack(pk);
    const timestamp = new Uint8Array(this.#timestampSize);
    if (this.#sesame.maxAge !== null) {
      const value = Math.trunc(nowSeconds) - TIMESTAMP_OFFSET;
      if (!(value >= -(2 ** 31) && value < 2 ** 31)) {
        throw new SidecastError('CONFIG_INVALID', `time ${nowSeconds} does not fit a v2 timestamp`);
      }
      new DataView(timestamp.buffer).setInt32(0, value);
    }
    const revocation = utf8.encode(revocationKey(user, this.#sesame));
    const message = concat(packedPk, timestamp, revocation, utf8.encode(scope));
    const signature = sign(message, this.#signingKey, this.#signatureSize);
    return Buffer.from(concat(packedPk, timestamp, signature)).toString('base64url');
  }
}

/**
 * Throws SidecastError('CONFIG_INVALID') when SESAME_SIGNATURE_SIZE is outside 1..64.
 * The packer must be the one the project's settings select (see selectPacker).
 */
export function createTokenCodec(
  django: DjangoSesameSettings,
  packer: Packer,
  options: TokenCodecOptions = {},
): TokenCodec {
  return new SesameTokenCodec(django, packer, options.derivation ?? 'current');
}
