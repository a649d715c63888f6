/**
 * djangorestframework-simplejwt's SIMPLE_JWT settings that decide whether an access token is
 * valid, read from SIMPLE_JWT_* environment variables with SimpleJWT's names and defaults.
 */
import type { Env } from '../../config/options.js';
import { SidecastError } from '../../errors.js';

/** rest_framework_simplejwt.backends.ALLOWED_ALGORITHMS, less those PyJWT adds on its own. */
export const SIMPLE_JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
] as const;

export type SimpleJwtAlgorithm = (typeof SIMPLE_JWT_ALGORITHMS)[number];

export interface SimpleJwtSettings {
  readonly algorithm: SimpleJwtAlgorithm;
  /** SIGNING_KEY (default SECRET_KEY): the HMAC secret of the HS algorithms. */
  readonly signingKey: string;
  /** VERIFYING_KEY: the PEM public key of the RS and ES algorithms. */
  readonly verifyingKey: string;
  /** AUDIENCE: checked only when set, as SimpleJWT does; a JSON list for several. */
  readonly audience: string | readonly string[] | null;
  readonly issuer: string | null;
  /** LEEWAY in seconds. */
  readonly leewaySeconds: number;
  readonly userIdClaim: string;
  readonly userIdField: string;
  /** TOKEN_TYPE_CLAIM; null checks no type (SimpleJWT's None). */
  readonly tokenTypeClaim: string | null;
  /** JTI_CLAIM; null requires no token id. */
  readonly jtiClaim: string | null;
  /** CHECK_REVOKE_TOKEN and REVOKE_TOKEN_CLAIM: the claim holding the md5 of the password. */
  readonly revokeTokenClaim: string | null;
}

function invalid(name: string, message: string): SidecastError {
  return new SidecastError('CONFIG_INVALID', `${name}: ${message}`);
}

function text(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw;
}

/** A claim name, or null for Python's None. */
function claim(env: Env, name: string, fallback: string): string | null {
  const raw = text(env, name)?.trim() ?? fallback;
  return raw === 'None' ? null : raw;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = text(env, name)?.trim();
  if (raw === undefined) return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw invalid(name, `expected True or False, got "${raw}"`);
}

function audienceOf(raw: string | undefined): string | readonly string[] | null {
  if (raw === undefined || raw.trim() === 'None') return null;
  if (!raw.trim().startsWith('[')) return raw.trim();
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw invalid('SIMPLE_JWT_AUDIENCE', 'expected a string or a JSON list of strings');
  }
  return Object.freeze(parsed);
}

/** A PEM key or certificate given as an HMAC secret: PyJWT refuses it, so does sidecast. */
const ASYMMETRIC_KEY = /-----BEGIN |^ssh-(rsa|ed25519|dss) |^ecdsa-sha2-/;

export function readSimpleJwtSettings(env: Env, secretKey: string): SimpleJwtSettings {
  const algorithm = text(env, 'SIMPLE_JWT_ALGORITHM')?.trim() ?? 'HS256';
  if (!(SIMPLE_JWT_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw invalid(
      'SIMPLE_JWT_ALGORITHM',
      `expected one of ${SIMPLE_JWT_ALGORITHMS.join(', ')}, got "${algorithm}"`,
    );
  }
  const signingKey = text(env, 'SIMPLE_JWT_SIGNING_KEY') ?? secretKey;
  const verifyingKey = text(env, 'SIMPLE_JWT_VERIFYING_KEY') ?? '';
  if (algorithm.startsWith('HS') && ASYMMETRIC_KEY.test(signingKey)) {
    throw invalid(
      'SIMPLE_JWT_SIGNING_KEY',
      `is a public key or certificate, not a ${algorithm} secret`,
    );
  }
  if (!algorithm.startsWith('HS') && verifyingKey === '') {
    throw invalid('SIMPLE_JWT_VERIFYING_KEY', `${algorithm} tokens need the PEM public key`);
  }
  const leewaySeconds = Number(text(env, 'SIMPLE_JWT_LEEWAY') ?? '0');
  if (!Number.isFinite(leewaySeconds) || leewaySeconds < 0) {
    throw invalid('SIMPLE_JWT_LEEWAY', 'expected seconds');
  }
  if (text(env, 'SIMPLE_JWT_JWK_URL') !== undefined) {
    throw invalid('SIMPLE_JWT_JWK_URL', 'keys from a JWK set are not supported');
  }
  return Object.freeze({
    algorithm: algorithm as SimpleJwtAlgorithm,
    signingKey,
    verifyingKey,
    audience: audienceOf(text(env, 'SIMPLE_JWT_AUDIENCE')),
    issuer: claim(env, 'SIMPLE_JWT_ISSUER', 'None'),
    leewaySeconds,
    userIdClaim: text(env, 'SIMPLE_JWT_USER_ID_CLAIM')?.trim() ?? 'user_id',
    userIdField: text(env, 'SIMPLE_JWT_USER_ID_FIELD')?.trim() ?? 'id',
    tokenTypeClaim: claim(env, 'SIMPLE_JWT_TOKEN_TYPE_CLAIM', 'token_type'),
    jtiClaim: claim(env, 'SIMPLE_JWT_JTI_CLAIM', 'jti'),
    revokeTokenClaim: flag(env, 'SIMPLE_JWT_CHECK_REVOKE_TOKEN', false)
      ? (text(env, 'SIMPLE_JWT_REVOKE_TOKEN_CLAIM')?.trim() ?? 'hash_password')
      : null,
  });
}
