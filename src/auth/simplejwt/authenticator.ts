/**
 * djangorestframework-simplejwt access tokens, validated as JWTAuthentication does with the
 * default AccessToken class: the signature and registered claims through jose (PyJWT's checks
 * in SimpleJWT), then SimpleJWT's own (exp required, jti, token_type "access"), then the user,
 * read from the Django database.
 */
import { md5 } from '@noble/hashes/legacy.js';
import {
  decodeProtectedHeader,
  importSPKI,
  importX509,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import {
  createDjangoDirectory,
  credentialStamp,
  unavailableOnDatabaseError,
} from '../user-directory.js';
import { createUserSnapshots } from '../user-snapshots.js';
import type { Authenticator, Principal } from '../authenticator.js';
import type { DjangoSettings } from '../../django/settings.js';
import type { DjangoUser } from '../../django/store.js';
import { openDjangoUsers, type DjangoUsers } from '../../django/users.js';
import { keyFromText } from '../../django/values.js';
import { authFailed, SidecastError } from '../../errors.js';
import type { SimpleJwtSettings } from './settings.js';

export interface SimpleJwtAuthenticatorOptions {
  readonly databaseUrl: string;
  readonly django: DjangoSettings & { readonly simpleJwt?: SimpleJwtSettings };
  readonly poolSize?: number;
}

/**
 * Longer tokens are refused unparsed: an access token is a few hundred bytes, and no first
 * message is larger than this anyway (MAX_CLIENT_MESSAGE_BYTES).
 */
export const MAX_JWT_LENGTH = 4096;

/** Three base64url parts: anything else is no JWS in compact form, and not for this scheme. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export type VerifyKey = Uint8Array | CryptoKey;

/** The key SimpleJWT's TokenBackend verifies with: SIGNING_KEY for HS, VERIFYING_KEY else. */
export async function verifyKeyOf(settings: SimpleJwtSettings): Promise<VerifyKey> {
  if (settings.algorithm.startsWith('HS')) return new TextEncoder().encode(settings.signingKey);
  try {
    const pem = settings.verifyingKey.trim();
    return pem.includes('CERTIFICATE')
      ? await importX509(pem, settings.algorithm)
      : await importSPKI(pem, settings.algorithm);
  } catch (error) {
    throw new SidecastError(
      'CONFIG_INVALID',
      `SIMPLE_JWT_VERIFYING_KEY is not a PEM public key for ${settings.algorithm}`,
      { cause: error },
    );
  }
}

/** get_md5_hash_password: the revocation claim's expected value. */
function md5Upper(password: string): string {
  return Buffer.from(md5(new TextEncoder().encode(password)))
    .toString('hex')
    .toUpperCase();
}

export interface ValidatedToken {
  readonly payload: JWTPayload;
}

/**
 * AccessToken(raw): the signature under the one configured algorithm (so neither `none` nor
 * another algorithm, and never the public key as an HMAC secret), exp/nbf/iat with LEEWAY,
 * AUDIENCE and ISSUER when set; then exp present, the jti and the token type "access".
 * Rejects with AUTH_FAILED, never anything else.
 */
export async function validateAccessToken(
  token: string,
  key: VerifyKey,
  settings: SimpleJwtSettings,
  now: Date = new Date(),
): Promise<ValidatedToken> {
  if (token.length > MAX_JWT_LENGTH || !COMPACT_JWS.test(token)) {
    throw authFailed('not a JSON web token');
  }
  let payload: JWTPayload;
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== settings.algorithm) throw new Error(`algorithm ${String(header.alg)}`);
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [settings.algorithm],
      clockTolerance: settings.leewaySeconds,
      currentDate: now,
      ...(settings.audience === null ? {} : { audience: [...[settings.audience].flat()] }),
      ...(settings.issuer === null ? {} : { issuer: settings.issuer }),
    }));
  } catch (error) {
    throw authFailed(`invalid token: ${error instanceof Error ? error.message : String(error)}`);
  }
  const nowSeconds = now.getTime() / 1000;
  // PyJWT 2.10 also refuses a token issued in the future.
  if (typeof payload.iat === 'number' && payload.iat > nowSeconds + settings.leewaySeconds) {
    throw authFailed('token issued in the future');
  }
  if (typeof payload.exp !== 'number') throw authFailed("token has no 'exp' claim");
  if (settings.jtiClaim !== null && !(settings.jtiClaim in payload)) {
    throw authFailed('token has no id');
  }
  if (settings.tokenTypeClaim !== null && payload[settings.tokenTypeClaim] !== 'access') {
    throw authFailed('token is not an access token');
  }
  return { payload };
}

export interface TokenUserCheck {
  readonly store: Pick<DjangoUsers, 'findUser' | 'model'>;
  readonly settings: SimpleJwtSettings;
}

/**
 * JWTAuthentication.get_user: the user whose USER_ID_FIELD equals the USER_ID_CLAIM, active,
 * and, with CHECK_REVOKE_TOKEN, whose password still hashes to the revocation claim. Reads one
 * user by id, so a batch can reuse it.
 */
export async function findTokenUser(
  check: TokenUserCheck,
  token: ValidatedToken,
): Promise<DjangoUser> {
  const { settings } = check;
  const claim: unknown = token.payload[settings.userIdClaim];
  const text = typeof claim === 'number' && Number.isInteger(claim) ? String(claim) : claim;
  const id = typeof text === 'string' ? keyFromText(text, check.store.model.lookupEncoding) : null;
  if (id === null) throw authFailed('token contains no recognizable user identification');
  const user = await check.store.findUser(id);
  if (user === null || !user.isActive) throw authFailed('unknown or inactive user');
  if (settings.revokeTokenClaim !== null) {
    if (token.payload[settings.revokeTokenClaim] !== md5Upper(user.password ?? '')) {
      throw authFailed(`password changed since the token of user ${user.pk} was made`);
    }
  }
  return user;
}

export function createSimpleJwtAuthenticatorOver(
  users: DjangoUsers,
  key: VerifyKey,
  settings: SimpleJwtSettings,
): Authenticator {
  const check: TokenUserCheck = { store: users, settings };
  // With CHECK_REVOKE_TOKEN a token names its user's password, and a new one revokes it; without,
  // a token holds until it expires whatever the user changes (as in SimpleJWT).
  const stampOf = (user: DjangoUser) =>
    settings.revokeTokenClaim === null
      ? undefined
      : credentialStamp('simplejwt', user.password ?? '');
  async function principalOf(user: DjangoUser): Promise<Principal> {
    const contentTypeIds = await users.contentTypeIds(user);
    const stamp = stampOf(user);
    return {
      userId: user.pk,
      username: user.username,
      contentTypeIds,
      ...(stamp === undefined ? {} : { credentialStamp: stamp }),
    };
  }
  return {
    directory: createDjangoDirectory({
      snapshots: createUserSnapshots(users, 0),
      store: users,
      stampOf,
    }),
    async authenticate({ token }) {
      const validated = await validateAccessToken(token, key, settings);
      return unavailableOnDatabaseError(async () =>
        principalOf(await findTokenUser(check, validated)),
      );
    },
    check: () => users.check(),
    close: () => users.close(),
  };
}

/** Opening it fails fast when a key is unusable, the database unreachable or its tables missing. */
export async function createSimpleJwtAuthenticator(
  options: SimpleJwtAuthenticatorOptions,
): Promise<Authenticator> {
  const settings = options.django.simpleJwt;
  if (settings === undefined) {
    throw new SidecastError('CONFIG_INVALID', '--auth simplejwt needs the SIMPLE_JWT settings');
  }
  const key = await verifyKeyOf(settings);
  const users = await openDjangoUsers(options.databaseUrl, options.django, {
    poolSize: options.poolSize ?? 8,
    lookup: Object.freeze({
      field: settings.userIdField,
      fieldSetting: 'SIMPLE_JWT_USER_ID_FIELD',
      emailNeededBy: null,
      untypedKeyType: null,
      untypedKeyRefusal: 'no Django key field maps to',
    }),
  });
  return createSimpleJwtAuthenticatorOver(users, key, settings);
}
