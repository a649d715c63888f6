/**
 * Django's session cookie: the browser of a logged-in user connects and sends nothing; the
 * session is loaded and its user checked exactly as django.contrib.auth.get_user does, so that
 * logging out, changing the password or the session expiring refuses the next connection. With
 * the database engines the connection also rests on its session: once logged out (or expired),
 * the next re-check of the user closes it with 1008.
 */
import type { Authenticator, Credential, Principal } from '../authenticator.js';
import {
  createDjangoDirectory,
  credentialStamp,
  unavailableOnDatabaseError,
} from '../user-directory.js';
import { createUserSnapshots } from '../user-snapshots.js';
import type { DjangoSettings } from '../../django/settings.js';
import { constantTimeEqual, saltedHmac, verificationSecrets } from '../../django/signing.js';
import type { DjangoUser } from '../../django/store.js';
import { openDjangoUsers, type DjangoUsers } from '../../django/users.js';
import { keyFromText } from '../../django/values.js';
import { authFailed, isSidecastError, SidecastError } from '../../errors.js';
import { isSessionKey, readCookie } from './cookie.js';
import type { SessionSettings } from './settings.js';
import { createSessionReader, type SessionData, type SessionReader } from './store.js';

export interface SessionAuthenticatorOptions {
  readonly databaseUrl: string;
  readonly django: DjangoSettings;
  readonly session: SessionSettings;
  readonly poolSize?: number;
}

const SESSION_KEY = '_auth_user_id';
const BACKEND_SESSION_KEY = '_auth_user_backend';
const HASH_SESSION_KEY = '_auth_user_hash';
/** How Principal.session names a Django session of the database engines. */
const SESSION = 'session:';
const AUTH_HASH_SALT = 'django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash';

/**
 * AbstractBaseUser.get_session_auth_hash under each secret, SECRET_KEY first. force_bytes makes
 * a NULL password the text "None", so that is what is hashed then.
 */
export function sessionAuthHashes(password: string | null, django: DjangoSettings): string[] {
  return verificationSecrets(django).map((secret) =>
    Buffer.from(saltedHmac(AUTH_HASH_SALT, password ?? 'None', secret)).toString('hex'),
  );
}

/** The session's hash matches the user's current password under one of the secrets. */
export function sessionHashMatches(sessionHash: unknown, hashes: readonly string[]): boolean {
  if (typeof sessionHash !== 'string' || sessionHash === '') return false;
  let matched = false;
  for (const hash of hashes) if (constantTimeEqual(sessionHash, hash)) matched = true;
  return matched;
}

export interface SessionUserCheck {
  readonly store: Pick<DjangoUsers, 'findUser' | 'model'>;
  readonly django: DjangoSettings;
  readonly backends: readonly string[];
}

/**
 * get_user(request) on a loaded session: the user it names, through a backend still listed in
 * AUTHENTICATION_BACKENDS, active, whose password still gives the session's auth hash.
 * Rejects with AUTH_FAILED otherwise. Reads one user by id, so a batch can reuse it.
 */
export async function findSessionUser(
  check: SessionUserCheck,
  data: SessionData,
): Promise<DjangoUser> {
  const backend = data[BACKEND_SESSION_KEY];
  if (typeof backend !== 'string' || !check.backends.includes(backend)) {
    throw authFailed('session of no user, or of a backend not in AUTHENTICATION_BACKENDS');
  }
  const raw = data[SESSION_KEY];
  const userId = typeof raw === 'string' ? keyFromText(raw, check.store.model.pkEncoding) : null;
  if (userId === null) throw authFailed('session names no valid user id');
  const user = await check.store.findUser(userId);
  if (user === null || !user.isActive) throw authFailed('unknown or inactive user');
  if (!sessionHashMatches(data[HASH_SESSION_KEY], sessionAuthHashes(user.password, check.django))) {
    throw authFailed(`session auth hash does not match for user ${user.pk}`);
  }
  return user;
}

export function createSessionAuthenticatorOver(
  users: DjangoUsers,
  reader: SessionReader,
  options: Pick<SessionAuthenticatorOptions, 'django' | 'session'>,
): Authenticator {
  const { session } = options;
  const check: SessionUserCheck = {
    store: users,
    django: options.django,
    backends: session.backends,
  };
  const cookieOf = (credential: Credential): string | undefined => {
    const header = credential.headers.cookie;
    return readCookie(Array.isArray(header) ? header.join('; ') : header, session.cookieName);
  };

  // The session's auth hash is an HMAC of the password: a new password ends every session.
  const stampOf = (user: DjangoUser) => credentialStamp('session', user.password ?? '');

  // Only the database engines can say a session has ended; a signed cookie is the browser's.
  const { ended } = reader;

  async function principalOf(user: DjangoUser, key: string): Promise<Principal> {
    const contentTypeIds = await users.contentTypeIds(user);
    const credentialStamp = stampOf(user);
    const principal = { userId: user.pk, username: user.username, contentTypeIds, credentialStamp };
    return ended === undefined ? principal : { ...principal, session: SESSION + key };
  }

  const directory = createDjangoDirectory({
    snapshots: createUserSnapshots(users, 0),
    store: users,
    stampOf,
    // Connections hold `session:<key>`; only those of this scheme are this reader's to answer.
    ...(ended === undefined
      ? {}
      : {
          async endedSessions(sessions: readonly string[]) {
            const keys = sessions.flatMap((s) =>
              s.startsWith(SESSION) ? [s.slice(SESSION.length)] : [],
            );
            if (keys.length === 0) return new Set<string>();
            const gone = await ended(keys);
            return new Set([...gone].map((key) => SESSION + key));
          },
        }),
  });

  return {
    reads: 'headers',
    directory,
    carries: (credential) => cookieOf(credential) !== undefined,
    async authenticate(credential) {
      // A cookie rides along with any page's request: only a browser's Origin tells whose page
      // opened the socket, and --allowed-origins has already vetted it.
      if (credential.headers.origin === undefined) {
        throw authFailed('session cookie without an Origin header');
      }
      const key = cookieOf(credential);
      if (!isSessionKey(key)) throw authFailed('no session cookie');
      return unavailableOnDatabaseError(async () => {
        const loaded = await reader.load(key);
        if (!loaded.ok) throw authFailed(`session does not load: ${loaded.reason}`);
        return principalOf(await findSessionUser(check, loaded.data), key);
      });
    },
    check: () => users.check(),
    close: () => users.close(),
  };
}

/** Opening it fails fast when the database is unreachable or lacks Django's tables. */
export async function createSessionAuthenticator(
  options: SessionAuthenticatorOptions,
): Promise<Authenticator> {
  const users = await openDjangoUsers(options.databaseUrl, options.django, {
    poolSize: options.poolSize ?? 8,
  });
  try {
    const reader = createSessionReader(options.session, options.django, users.db);
    if (options.session.storage === 'db') {
      // The table is Django's sessions app's: missing, it is a setup error to report at start.
      await users.db.query(`SELECT 1 AS ok FROM ${users.db.quote('django_session')} WHERE 1 = 0`);
    }
    return createSessionAuthenticatorOver(users, reader, options);
  } catch (error) {
    await users.close();
    if (isSidecastError(error)) throw error;
    throw new SidecastError('INTERNAL', String(error), { cause: error });
  }
}
