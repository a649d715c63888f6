/**
 * Django's signing primitives (django.utils.crypto.salted_hmac, django.core.signing), read-only:
 * sidecast checks what Django signed and never signs anything Django would accept.
 */
import { timingSafeEqual } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { DjangoSettings } from './settings.js';

const utf8 = new TextEncoder();

/**
 * The secrets Django verifies with, in the order it tries them: SECRET_KEY, then each of
 * SECRET_KEY_FALLBACKS. Every signature sidecast checks goes through this list.
 */
export function verificationSecrets(settings: DjangoSettings): readonly string[] {
  return [settings.secretKey, ...settings.secretKeyFallbacks];
}

/**
 * salted_hmac(key_salt, value, secret, algorithm="sha256"): the HMAC keyed by
 * sha256(key_salt + secret). Signing and session auth hashes both use sha256.
 */
export function saltedHmac(keySalt: string, value: string, secret: string): Uint8Array {
  const key = sha256(utf8.encode(keySalt + secret));
  return hmac(sha256, key, utf8.encode(value));
}

/** Django's constant_time_compare on text. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  // Compared against itself when the lengths differ, so the time does not depend on where they differ.
  return left.length === right.length ? timingSafeEqual(left, right) : !timingSafeEqual(left, left);
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** signing.b62_decode; null for a character outside the alphabet (Python raises ValueError). */
export function b62Decode(text: string): number | null {
  if (text === '0') return 0;
  const negative = text.startsWith('-');
  const digits = negative ? text.slice(1) : text;
  let value = 0;
  for (const char of digits) {
    const digit = BASE62.indexOf(char);
    if (digit === -1) return null;
    value = value * 62 + digit;
  }
  return negative ? -value : value;
}

/** Base64url without padding, as signing.b64_encode writes it. */
function b64Encode(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** signing.b64_decode: urlsafe base64, padding restored; null where Python would raise. */
function b64Decode(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  return Uint8Array.from(Buffer.from(text, 'base64url'));
}

export interface SignedObjectOptions {
  /** The salt of the signer (signing.loads's `salt`). */
  readonly salt: string;
  /** SECRET_KEY then fallbacks (see verificationSecrets). */
  readonly secrets: readonly string[];
  /** max_age in seconds; null checks no age, like Python's None. */
  readonly maxAgeSeconds: number | null;
  readonly nowSeconds: number;
}

export type SignedObjectResult =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

function refused(reason: string): SignedObjectResult {
  return { ok: false, reason };
}

/**
 * signing.loads with Django's JSONSerializer: a TimestampSigner's "payload:timestamp:signature"
 * (sha256, key salt `salt + "signer"`), any of the secrets, then the age, then the payload
 * (a leading "." means zlib-compressed), read as latin-1 JSON as the serializer does.
 */
export function loadSignedObject(signed: string, options: SignedObjectOptions): SignedObjectResult {
  const signatureAt = signed.lastIndexOf(':');
  if (signatureAt === -1) return refused('no signature');
  const value = signed.slice(0, signatureAt);
  const signature = signed.slice(signatureAt + 1);
  let valid = false;
  for (const secret of options.secrets) {
    const expected = b64Encode(saltedHmac(`${options.salt}signer`, value, secret));
    // No early exit: the time taken does not tell which secret matched.
    if (constantTimeEqual(signature, expected)) valid = true;
  }
  if (!valid) return refused('signature does not match');

  const timestampAt = value.lastIndexOf(':');
  if (timestampAt === -1) return refused('no timestamp');
  const timestamp = b62Decode(value.slice(timestampAt + 1));
  if (timestamp === null) return refused('malformed timestamp');
  if (options.maxAgeSeconds !== null) {
    const age = options.nowSeconds - timestamp;
    if (age > options.maxAgeSeconds) return refused(`signature expired ${age} s ago`);
  }

  let payload = value.slice(0, timestampAt);
  const compressed = payload.startsWith('.');
  if (compressed) payload = payload.slice(1);
  const decoded = b64Decode(payload);
  if (decoded === null) return refused('payload is not base64');
  try {
    const data = compressed ? inflateSync(decoded) : Buffer.from(decoded);
    return { ok: true, value: JSON.parse(data.toString('latin1')) as unknown };
  } catch {
    return refused('payload does not decode');
  }
}
