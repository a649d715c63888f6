/**
 * The Django settings session authentication mirrors (SESSION_*, AUTHENTICATION_BACKENDS), read
 * from environment variables with their Django names, defaults and meaning.
 */
import { SidecastError } from '../../errors.js';
import type { Env } from '../../config/options.js';

/** The session engines whose sessions sidecast can read without Django. */
export const SESSION_ENGINES = {
  'django.contrib.sessions.backends.db': 'db',
  // Django writes every cached_db session to the database too: the database is the truth.
  'django.contrib.sessions.backends.cached_db': 'db',
  'django.contrib.sessions.backends.signed_cookies': 'signed_cookies',
} as const;

export type SessionStorage = (typeof SESSION_ENGINES)[keyof typeof SESSION_ENGINES];

export interface SessionSettings {
  /** SESSION_ENGINE, as configured. */
  readonly engine: keyof typeof SESSION_ENGINES;
  /** Where that engine keeps the session: the database, or the cookie itself. */
  readonly storage: SessionStorage;
  /** SESSION_COOKIE_NAME (default "sessionid"). */
  readonly cookieName: string;
  /** SESSION_COOKIE_AGE in seconds (default two weeks): the signed_cookies engine's max age. */
  readonly cookieAgeSeconds: number;
  /** AUTHENTICATION_BACKENDS: a session names the backend that logged it in, which must be one. */
  readonly backends: readonly string[];
}

export const DEFAULT_BACKENDS = ['django.contrib.auth.backends.ModelBackend'] as const;

function invalid(name: string, message: string): SidecastError {
  return new SidecastError('CONFIG_INVALID', `${name}: ${message}`);
}

function readList(raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  if (raw.trim().startsWith('[')) {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
      throw invalid('AUTHENTICATION_BACKENDS', 'expected a JSON list of strings');
    }
    return parsed;
  }
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function readSessionSettings(env: Env): SessionSettings {
  const engine = env.SESSION_ENGINE?.trim() || 'django.contrib.sessions.backends.db';
  if (!Object.hasOwn(SESSION_ENGINES, engine)) {
    throw invalid(
      'SESSION_ENGINE',
      `sidecast reads sessions of ${Object.keys(SESSION_ENGINES).join(', ')}; got "${engine}"`,
    );
  }
  const known = engine as keyof typeof SESSION_ENGINES;
  const rawAge = env.SESSION_COOKIE_AGE?.trim() || '1209600';
  const cookieAgeSeconds = Number(rawAge);
  if (!Number.isFinite(cookieAgeSeconds) || cookieAgeSeconds < 0) {
    throw invalid('SESSION_COOKIE_AGE', `expected seconds, got "${rawAge}"`);
  }
  return Object.freeze({
    engine: known,
    storage: SESSION_ENGINES[known],
    cookieName: env.SESSION_COOKIE_NAME?.trim() || 'sessionid',
    cookieAgeSeconds,
    backends: Object.freeze(readList(env.AUTHENTICATION_BACKENDS) ?? [...DEFAULT_BACKENDS]),
  });
}
