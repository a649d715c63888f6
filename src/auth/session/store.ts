/**
 * Loads a Django session as SessionStore.load() does for the engines sidecast reads: the
 * django_session row that has not expired (db, cached_db), or the signed cookie itself
 * (signed_cookies). Both decode with signing.loads; a session that does not load is empty.
 * Database sessions can also be asked whether they still exist, which is how logging out reaches
 * connections already open.
 */
import { chunks } from '../../chunks.js';
import type { DjangoDb } from '../../django/db.js';
import { isoformat, nowMicros, storageText, wallTime } from '../../django/last-login.js';
import type { DjangoSettings } from '../../django/settings.js';
import { marks } from '../../django/store.js';
import { loadSignedObject, verificationSecrets } from '../../django/signing.js';
import type { SessionSettings } from './settings.js';

/** What a session holds: Django's session dict (JSON), or null when it does not load. */
export type SessionData = Readonly<Record<string, unknown>>;

export type SessionLoad =
  | { readonly ok: true; readonly data: SessionData }
  | { readonly ok: false; readonly reason: string };

export interface SessionReader {
  /** Rejects only when the database cannot answer (SidecastError DB_UNAVAILABLE). */
  load(sessionKey: string): Promise<SessionLoad>;
  /**
   * Which of these session keys no longer name a session that has not expired (logged out,
   * flushed, expired). Absent for signed cookies: nothing on the server ends them.
   */
  readonly ended?: (sessionKeys: readonly string[]) => Promise<ReadonlySet<string>>;
}

/** Keys one query asks about: as many parameters as a batch of users. */
const KEYS_PER_QUERY = 500;

/** SessionBase.key_salt of db.SessionStore and cached_db.SessionStore: both classes are named so. */
const DB_SESSION_SALT = 'django.contrib.sessions.SessionStore';
const SIGNED_COOKIE_SALT = 'django.contrib.sessions.backends.signed_cookies';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function decoded(
  signed: string,
  salt: string,
  django: DjangoSettings,
  maxAgeSeconds: number | null,
): SessionLoad {
  const result = loadSignedObject(signed, {
    salt,
    secrets: verificationSecrets(django),
    maxAgeSeconds,
    nowSeconds: Date.now() / 1000,
  });
  if (!result.ok) return result;
  if (!isRecord(result.value)) return { ok: false, reason: 'session is not a dict' };
  return { ok: true, data: result.value };
}

/** timezone.now() bound as Django binds it: an instant on PostgreSQL, wall time elsewhere. */
function nowParam(db: DjangoDb, django: DjangoSettings): string {
  const micros = nowMicros();
  if (db.dialect === 'postgres') return isoformat(wallTime(micros), '+00:00');
  return storageText(wallTime(micros, django.useTz ? 'UTC' : (django.timeZone ?? 'UTC')));
}

export function createSessionReader(
  settings: SessionSettings,
  django: DjangoSettings,
  db: DjangoDb,
): SessionReader {
  if (settings.storage === 'signed_cookies') {
    return {
      // This engine ignores a custom expiry set on the session (Django ticket #19201): so does sidecast.
      load: async (cookie) =>
        decoded(cookie, SIGNED_COOKIE_SALT, django, settings.cookieAgeSeconds),
    };
  }
  const q = (identifier: string) => db.quote(identifier);
  const select =
    `SELECT ${q('session_data')} AS ${q('data')} FROM ${q('django_session')} ` +
    `WHERE ${q('session_key')} = ? AND ${q('expire_date')} > ?`;
  const existing = (count: number) =>
    `SELECT ${q('session_key')} AS ${q('key')} FROM ${q('django_session')} ` +
    `WHERE ${q('session_key')} IN (${marks(count)}) AND ${q('expire_date')} > ?`;
  return {
    async ended(sessionKeys) {
      const ended = new Set(sessionKeys);
      for (const keys of chunks(sessionKeys, KEYS_PER_QUERY)) {
        const rows = await db.query<{ key: unknown }>(existing(keys.length), [
          ...keys,
          nowParam(db, django),
        ]);
        for (const row of rows) ended.delete(String(row.key));
      }
      return ended;
    },
    async load(sessionKey) {
      const rows = await db.query<{ data: unknown }>(select, [sessionKey, nowParam(db, django)]);
      const row = rows[0];
      if (row === undefined) return { ok: false, reason: 'no such session, or expired' };
      return decoded(String(row.data), DB_SESSION_SALT, django, null);
    },
  };
}
