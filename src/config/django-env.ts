import {
  DEFAULT_SESAME_SETTINGS,
  type DjangoSesameSettings,
  type SesameSettings,
} from '../auth/sesame/settings.js';
import { readSessionSettings } from '../auth/session/settings.js';
import { readSimpleJwtSettings } from '../auth/simplejwt/settings.js';
import { SidecastError } from '../errors.js';
import type { Env } from './options.js';

/** Django settings mirrored by sidecast, documented in --help of the commands that read them. */
export const DJANGO_ENV_NOTES = [
  'Django settings, read from environment variables with their Django names and meaning:',
  '  DJANGO_SECRET_KEY (required), DJANGO_SECRET_KEY_FALLBACKS (comma-separated or a JSON list),',
  '  AUTH_USER_MODEL (default auth.User), USE_TZ (default True), SESAME_MAX_AGE (seconds; default None),',
  '  SESAME_KEY, SESAME_SIGNATURE_SIZE (default 10), SESAME_ONE_TIME (default False),',
  '  SESAME_INVALIDATE_ON_PASSWORD_CHANGE (default True), SESAME_INVALIDATE_ON_EMAIL_CHANGE (default False),',
  '  SESAME_PRIMARY_KEY_FIELD (default pk), SESAME_PACKER (default: chosen from the field type),',
  "  TIME_ZONE (default UTC; used when USE_TZ is False). User model attributes, when not Django's defaults:",
  '  AUTH_USER_DB_TABLE (Meta.db_table), USERNAME_FIELD (default username), EMAIL_FIELD (default email).',
];

function djangoInvalid(name: string, message: string): SidecastError {
  return new SidecastError('CONFIG_INVALID', `${name}: ${message}`);
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off|none)$/i.test(raw)) return false;
  throw djangoInvalid(name, `expected True or False, got "${raw}"`);
}

function readFallbacks(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  if (raw.trim().startsWith('[')) {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
      throw djangoInvalid('DJANGO_SECRET_KEY_FALLBACKS', 'expected a JSON list of strings');
    }
    return parsed;
  }
  return raw.split(',').filter((item) => item !== '');
}

function readMaxAge(raw: string | undefined): number | null {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'None') return null;
  const value = Number(raw);
  if (!Number.isFinite(value))
    throw djangoInvalid('SESAME_MAX_AGE', `expected seconds or None, got "${raw}"`);
  return value;
}

/** The SESAME_* settings, with django-sesame's own checks of how they combine. */
function readSesameSettings(env: Env): SesameSettings {
  const signatureSize = Number(env.SESAME_SIGNATURE_SIZE ?? DEFAULT_SESAME_SETTINGS.signatureSize);
  if (!Number.isInteger(signatureSize) || signatureSize < 1 || signatureSize > 64) {
    throw djangoInvalid('SESAME_SIGNATURE_SIZE', 'must be an integer from 1 to 64');
  }
  const sesame: SesameSettings = Object.freeze({
    maxAge: readMaxAge(env.SESAME_MAX_AGE),
    oneTime: readBoolean(env, 'SESAME_ONE_TIME', DEFAULT_SESAME_SETTINGS.oneTime),
    invalidateOnPasswordChange: readBoolean(
      env,
      'SESAME_INVALIDATE_ON_PASSWORD_CHANGE',
      DEFAULT_SESAME_SETTINGS.invalidateOnPasswordChange,
    ),
    invalidateOnEmailChange: readBoolean(
      env,
      'SESAME_INVALIDATE_ON_EMAIL_CHANGE',
      DEFAULT_SESAME_SETTINGS.invalidateOnEmailChange,
    ),
    packer: env.SESAME_PACKER?.trim() ? env.SESAME_PACKER.trim() : null,
    primaryKeyField:
      env.SESAME_PRIMARY_KEY_FIELD?.trim() || DEFAULT_SESAME_SETTINGS.primaryKeyField,
    key: env.SESAME_KEY ?? DEFAULT_SESAME_SETTINGS.key,
    signatureSize,
  });
  if (sesame.maxAge === null && !sesame.invalidateOnPasswordChange) {
    // django-sesame refuses this combination (ImproperlyConfigured): tokens would never die.
    throw djangoInvalid(
      'SESAME_INVALIDATE_ON_PASSWORD_CHANGE',
      'cannot be False when SESAME_MAX_AGE is None',
    );
  }
  return sesame;
}

/**
 * Reads the Django settings and django-sesame's beside them (under `sesame`, which only the
 * sesame authenticator reads); fails with one clear line when they cannot work.
 */
export function loadDjangoSettings(env: Env): DjangoSesameSettings {
  const secretKey = env.DJANGO_SECRET_KEY;
  if (secretKey === undefined || secretKey === '') {
    throw new SidecastError(
      'CONFIG_INVALID',
      'DJANGO_SECRET_KEY is not set: export the SECRET_KEY of your Django project',
    );
  }
  const sesame = readSesameSettings(env);
  const authUserModel = env.AUTH_USER_MODEL?.trim() || 'auth.User';
  if (!/^\w+\.\w+$/.test(authUserModel)) {
    throw djangoInvalid(
      'AUTH_USER_MODEL',
      `expected "app_label.ModelName", got "${authUserModel}"`,
    );
  }
  return Object.freeze({
    secretKey,
    secretKeyFallbacks: Object.freeze(readFallbacks(env.DJANGO_SECRET_KEY_FALLBACKS)),
    authUserModel,
    useTz: readBoolean(env, 'USE_TZ', true),
    timeZone: env.TIME_ZONE?.trim() || 'UTC',
    // Attributes of the user model rather than settings; needed only when they differ from Django's defaults.
    userTable: env.AUTH_USER_DB_TABLE?.trim() || null,
    usernameField: env.USERNAME_FIELD?.trim() || null,
    emailField: env.EMAIL_FIELD?.trim() || null,
    sesame,
    session: readSessionSettings(env),
    simpleJwt: readSimpleJwtSettings(env, secretKey),
  });
}
