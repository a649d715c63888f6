/**
 * The revocation key: user state that enters the signature but never the token, so that
 * changing it revokes every token of that user (spec A.5).
 */
import { randomBytes } from 'node:crypto';
import { SidecastError } from '../../errors.js';
import type { SesameSettings } from './settings.js';

/** The user columns a token depends on, as Django's ORM would return them. */
export interface SesameUser {
  password: string | null;
  email: string | null;
  /** Python isoformat of last_login, or null */
  lastLogin: string | null;
}

/**
 * For these hashers django-sesame keeps only the trailing hash, leaving the salt out of what
 * it signs. A Map, so that a password such as "constructor$..." finds nothing.
 */
export const HASH_SIZES: ReadonlyMap<string, number> = new Map([
  ['pbkdf2_sha256', 44],
  ['pbkdf2_sha1', 28],
  ['argon2', 22],
  ['bcrypt_sha256', 31],
  ['bcrypt', 31],
  ['sha1', 40],
  ['md5', 32],
  ['crypt', 11],
]);

function passwordPart(password: string): string {
  const dollar = password.indexOf('$');
  const algorithm = dollar === -1 ? password : password.slice(0, dollar);
  const size = HASH_SIZES.get(algorithm);
  if (size === undefined) return password;
  // Python slices by code point, not by UTF-16 unit.
  return Array.from(password).slice(-size).join('');
}

/**
 * Throws SidecastError('AUTH_FAILED') when INVALIDATE_ON_EMAIL_CHANGE meets a NULL email,
 * where Python fails with a TypeError.
 */
export function revocationKey(user: SesameUser, sesame: SesameSettings): string {
  let key = '';
  if (sesame.invalidateOnPasswordChange && user.password !== null) {
    key += passwordPart(user.password);
  }
  if (sesame.invalidateOnEmailChange) {
    if (user.email === null) {
      throw new SidecastError(
        'AUTH_FAILED',
        'SESAME_INVALIDATE_ON_EMAIL_CHANGE is on but the user email is NULL',
      );
    }
    key += user.email;
  }
  if (sesame.oneTime && user.lastLogin !== null) key += user.lastLogin;
  return key;
}

/**
 * A user that does not exist, shaped like one that does: a password hash of Django's default
 * hasher, an email and a last_login, so its revocation key has the length of a real user's and
 * signing over it costs the same. Refusing an unknown or inactive user only after checking the
 * token against it keeps the refusal from telling whether the account exists (Django's
 * check_password runs the hasher for unknown users for the same reason). The random parts are
 * drawn once per process; no token can match them without the secret key anyway.
 */
export function decoyUser(): SesameUser {
  const salt = randomBytes(16).toString('base64url').slice(0, 22);
  return Object.freeze({
    password: `pbkdf2_sha256$1000000$${salt}$${randomBytes(32).toString('base64')}`,
    email: `${randomBytes(6).toString('hex')}@example.com`,
    lastLogin: '2024-01-01T00:00:00.000000+00:00',
  });
}
