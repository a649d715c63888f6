/**
 * BLAKE2b key derivation and signing for django-sesame v2 tokens (spec A.2, A.6).
 */
import { blake2b } from '@noble/hashes/blake2.js';
import { verificationSecrets } from '../../django/signing.js';
import { SidecastError } from '../../errors.js';
import type { DjangoSesameSettings, SesameSettings } from './settings.js';

/**
 * django-sesame 3.1 added SESAME_PRIMARY_KEY_FIELD to the key material, which changed every
 * token; 'legacy-3.0' reproduces the four-part material of releases 2.0 to 3.0.
 */
export type KeyDerivation = 'current' | 'legacy-3.0';

const utf8 = new TextEncoder();

// BLAKE2b personalization is 16 bytes; hashlib zero-pads the 15-byte "sesame.settings".
const SETTINGS_PERSON = new Uint8Array(16);
SETTINGS_PERSON.set(utf8.encode('sesame.settings'));
const TOKENS_PERSON = utf8.encode('sesame.tokens_v2');

export const MIN_SIGNATURE_SIZE = 1;
export const MAX_SIGNATURE_SIZE = 64;

/** The text hashed into the signing key. Only whether MAX_AGE is set matters, not its value. */
export function keyMaterial(
  secretKey: string,
  sesame: SesameSettings,
  derivation: KeyDerivation = 'current',
): string {
  const parts = [
    secretKey,
    sesame.key,
    sesame.maxAge === null ? '' : 'max_age',
    sesame.packer ?? '',
  ];
  if (derivation === 'current') parts.push(sesame.primaryKeyField);
  return parts.join('|');
}

export function deriveSigningKey(
  secretKey: string,
  sesame: SesameSettings,
  derivation: KeyDerivation = 'current',
): Uint8Array {
  const material = utf8.encode(keyMaterial(secretKey, sesame, derivation));
  return blake2b(material, { dkLen: 64, personalization: SETTINGS_PERSON });
}

/** SECRET_KEY's key first (the one that signs), then one per SECRET_KEY_FALLBACKS entry. */
export function deriveVerificationKeys(
  django: DjangoSesameSettings,
  derivation: KeyDerivation = 'current',
): Uint8Array[] {
  return verificationSecrets(django).map((secret) =>
    deriveSigningKey(secret, django.sesame, derivation),
  );
}

export function assertSignatureSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_SIGNATURE_SIZE || size > MAX_SIGNATURE_SIZE) {
    throw new SidecastError(
      'CONFIG_INVALID',
      `SESAME_SIGNATURE_SIZE must be an integer from ${MIN_SIGNATURE_SIZE} to ${MAX_SIGNATURE_SIZE}, got ${size}`,
    );
  }
}

/**
 * The output length is a BLAKE2b parameter, so a short signature is not a prefix of the
 * 64-byte digest: it must be computed with dkLen = size.
 */
export function sign(message: Uint8Array, key: Uint8Array, size: number): Uint8Array {
  return blake2b(message, { dkLen: size, key, personalization: TOKENS_PERSON });
}
