import type { Authenticator, Principal } from '../authenticator.js';
import { authFailed, authUnavailable, isSidecastError, SidecastError } from '../../errors.js';
import type { DjangoStore, DjangoUser } from '../../django/store.js';
import { openDjangoUsers, type DjangoUsers } from '../../django/users.js';
import { createTokenCodec, type DecodeResult, type TokenCodec } from './codec.js';
import { selectPacker } from './packers.js';
import { decoyUser, type SesameUser } from './revocation.js';
import { sesameUserLookup, type DjangoSesameSettings } from './settings.js';

export interface SesameAuthenticatorOptions {
  readonly databaseUrl: string;
  readonly django: DjangoSesameSettings;
  /** django-sesame scope the tokens were made for ("" by default, as in the guide). */
  readonly scope: string;
  readonly poolSize?: number;
}

export interface SesameAuthenticator extends Authenticator {
  /** What sesame.utils.get_token would return now for this user (for `sidecast token` and `connect --as`). */
  mintToken(username: string, scope?: string): Promise<string>;
}

function nowSeconds(): number {
  return Date.now() / 1000;
}

/** Database errors during authentication mean "try again", never "authentication failed". */
async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isSidecastError(error) && error.code !== 'DB_UNAVAILABLE') throw error;
    throw authUnavailable('database unavailable during authentication', error);
  }
}

export interface TokenUserCheck {
  readonly store: Pick<DjangoStore, 'findUser'>;
  readonly codec: Pick<TokenCodec, 'verify'>;
  readonly scope: string;
  /** Stands in for a user that does not exist (see decoyUser). */
  readonly decoy: SesameUser;
}

/**
 * Step 2 of get_user: the user a decoded token names, if its signature holds and the user may
 * log in; rejects with AUTH_FAILED otherwise. The signature is checked whoever the token names,
 * against the decoy when the user is missing, and only then is the token refused: a refusal then
 * costs the same work whether or not the account exists, so its timing does not tell.
 */
export async function findTokenUser(
  check: TokenUserCheck,
  decoded: Extract<DecodeResult, { ok: true }>,
): Promise<DjangoUser> {
  const user = await check.store.findUser(decoded.pk);
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

  const check: TokenUserCheck = { store, codec, scope, decoy: decoyUser() };

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

  async function principalOf(user: DjangoUser): Promise<Principal> {
    const contentTypeIds = await store.contentTypeIds(user);
    return { userId: user.pk, username: user.username, contentTypeIds };
  }

  return {
    async authenticate({ token }) {
      const decoded = codec.decode(token, nowSeconds());
      if (!decoded.ok) throw authFailed(decoded.reason);
      return guarded(async () => {
        const user = await findTokenUser(check, decoded);
        if (django.sesame.oneTime) await recordOneTimeLogin(user);
        return principalOf(user);
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
    close: () => store.close(),
  };
}
