import type { Authenticator, Principal } from '../authenticator.js';
import {
  createDjangoDirectory,
  credentialStamp,
  unavailableOnDatabaseError,
} from '../user-directory.js';
import { authFailed, authUnavailable, isSidecastError, SidecastError } from '../../errors.js';
import type { DjangoUser } from '../../django/store.js';
import type { PkValue } from '../../django/fields.js';
import { openDjangoUsers, type DjangoUsers } from '../../django/users.js';
import { createTokenCodec, type DecodeResult, type TokenCodec } from './codec.js';
import { selectPacker } from './packers.js';
import { createUserSnapshots, type UserSnapshot } from '../user-snapshots.js';
import { decoyUser, revocationKey, type SesameUser } from './revocation.js';
import { sesameUserLookup, type DjangoSesameSettings, type SesameSettings } from './settings.js';

export interface SesameAuthenticatorOptions {
  readonly databaseUrl: string;
  readonly django: DjangoSesameSettings;
  /** django-sesame scope the tokens were made for ("" by default, as in the guide). */
  readonly scope: string;
  readonly poolSize?: number;
  /**
   * How long a user's snapshot (row and permissions) is reused across connections, in ms: the
   * permission-refresh interval. 0: every authentication reads the database.
   */
  readonly snapshotTtlMs?: number;
}

/**
 * What a token of this user depends on, as a stamp: it changes exactly when django-sesame would
 * stop accepting tokens issued before (password, email with INVALIDATE_ON_EMAIL_CHANGE). A
 * one-time token's last_login is left out: it is spent at connect time, and a later login of the
 * same user must not close the connections it already opened.
 */
function sesameStamp(user: SesameUser, sesame: SesameSettings): string {
  try {
    return credentialStamp('sesame', revocationKey(user, { ...sesame, oneTime: false }));
  } catch {
    // A NULL email under INVALIDATE_ON_EMAIL_CHANGE: no token of this user is accepted now.
    return 'sesame:refused';
  }
}

export interface SesameAuthenticator extends Authenticator {
  /** What sesame.utils.get_token would return now for this user (for `sidecast token` and `connect --as`). */
  mintToken(username: string, scope?: string): Promise<string>;
}

function nowSeconds(): number {
  return Date.now() / 1000;
}

export interface TokenUserCheck {
  readonly codec: Pick<TokenCodec, 'verify'>;
  readonly scope: string;
  /** Stands in for a user that does not exist (see decoyUser). */
  readonly decoy: SesameUser;
}

/**
 * Step 2 of get_user: `user` (the one the decoded token names, as read, or null), if the token's
 * signature holds for it and it may log in; throws AUTH_FAILED otherwise. The signature is
 * checked whoever the token names, against the decoy when the user is missing, and only then is
 * the token refused: a refusal then costs the same work whether or not the account exists, so
 * its timing does not tell.
 */
export function checkTokenUser(
  check: TokenUserCheck,
  decoded: Extract<DecodeResult, { ok: true }>,
  user: DjangoUser | null,
): DjangoUser {
  const valid = check.codec.verify(decoded, user ?? check.decoy, check.scope);
  if (!user || !user.isActive) throw authFailed('unknown or inactive user');
  if (!valid) throw authFailed(`invalid token for user ${user.pk}`);
  return user;
}

/**
 * Validates django-sesame v2 tokens (the credential's token) the way sesame.utils.get_user does,
 * reading the Django database directly, then computes the content types the user may view or
 * change. Opening it fails fast when the database is unreachable or lacks Django's tables.
 */
export async function createSesameAuthenticator(
  options: SesameAuthenticatorOptions,
): Promise<SesameAuthenticator> {
  const { django, scope } = options;
  const store: DjangoUsers = await openDjangoUsers(options.databaseUrl, django, {
    poolSize: options.poolSize ?? 8,
    lookup: sesameUserLookup(django.sesame),
  });
  let codec: TokenCodec;
  try {
    const packer = selectPacker(django.sesame.packer, store.model.lookupFieldType);
    codec = createTokenCodec(django, packer);
  } catch (error) {
    await store.close();
    throw error;
  }

  const snapshots = createUserSnapshots(store, options.snapshotTtlMs ?? 0);
  const check: TokenUserCheck = { codec, scope, decoy: decoyUser() };

  /** A one-time token is spent by moving last_login, which its signature covers. */
  async function recordOneTimeLogin(user: DjangoUser): Promise<void> {
    if (store.model.lastLoginColumn === null) {
      throw new SidecastError(
        'DB_SCHEMA',
        `table "${store.model.table}" has no last_login column, which SESAME_ONE_TIME needs`,
      );
    }
    // No clock argument: the store stamps microseconds, as timezone.now() does; a Date would drop them.
    await store.recordLogin(user);
  }

  function principalOf(user: DjangoUser, contentTypeIds: ReadonlySet<number>): Principal {
    const stamp = sesameStamp(user, django.sesame);
    return { userId: user.pk, username: user.username, contentTypeIds, credentialStamp: stamp };
  }

  /**
   * The token's user from the snapshots. A token that fails against a snapshot is checked once
   * more against the database: it may have been made after the user changed (a new password).
   * One-time tokens always read the database, as their last_login must be the current one.
   */
  async function tokenUser(decoded: Extract<DecodeResult, { ok: true }>): Promise<UserSnapshot> {
    const verify = (snapshot: UserSnapshot | null) =>
      checkTokenUser(check, decoded, snapshot?.user ?? null);
    const cached = django.sesame.oneTime ? undefined : snapshots.cached(decoded.pk);
    if (cached !== undefined) {
      try {
        verify(cached);
        return cached;
      } catch (error) {
        if (!isSidecastError(error, 'AUTH_FAILED')) throw error;
      }
    }
    const read = await snapshots.read(decoded.pk);
    verify(read);
    return read!;
  }

  /**
   * A control message named the user while they were being read: what was read may be what it
   * says has changed, and a connection not yet live misses the re-check it causes. So the user
   * is read again, until no message came meanwhile (a few times at most: then "try again").
   */
  async function readAgain(lookup: PkValue, first: Principal): Promise<Principal> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const mark = snapshots.mark();
      const again = await snapshots.read(lookup);
      if (again === null || !again.user.isActive) throw authFailed('user changed meanwhile');
      const principal = principalOf(again.user, await again.contentTypeIds());
      if (principal.credentialStamp !== first.credentialStamp) {
        throw authFailed('credentials changed meanwhile');
      }
      if (!snapshots.changedSince(mark, again.user.pk)) return principal;
    }
    throw authUnavailable('the user kept changing during authentication');
  }

  const directory = createDjangoDirectory({
    snapshots,
    store,
    stampOf: (user) => sesameStamp(user, django.sesame),
  });

  return {
    directory,
    async authenticate({ token }) {
      const decoded = codec.decode(token, nowSeconds());
      if (!decoded.ok) throw authFailed(decoded.reason);
      return unavailableOnDatabaseError(async () => {
        let mark = snapshots.mark();
        const snapshot = await tokenUser(decoded);
        const { user } = snapshot;
        let changed = false;
        if (django.sesame.oneTime) {
          await recordOneTimeLogin(user);
          changed = snapshots.changedSince(mark, user.pk);
          snapshots.forget([user.pk]);
          mark = snapshots.mark();
        }
        const principal = principalOf(user, await snapshot.contentTypeIds());
        changed ||= snapshots.changedSince(mark, user.pk);
        return changed ? readAgain(decoded.pk, principal) : principal;
      });
    },
    async mintToken(username, tokenScope = scope) {
      const user = await store.findUserByUsername(username);
      if (!user) throw new SidecastError('USER_NOT_FOUND', `no user named "${username}"`);
      if (!user.isActive)
        throw new SidecastError('USER_NOT_FOUND', `user "${username}" is inactive`);
      return codec.create(user.lookup, user, tokenScope, nowSeconds());
    },
    check: () => store.check(),
    async close() {
      snapshots.close();
      await store.close();
    },
  };
}
