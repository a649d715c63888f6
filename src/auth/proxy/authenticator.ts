/**
 * Django decides: --auth proxy asks the project's auth endpoint who a credential belongs to, and
 * --permissions-url (with any authenticator) asks what the user may see, through user.has_perm
 * and every AUTHENTICATION_BACKENDS entry, where no reader of the database could tell.
 */
import type {
  Authenticator,
  Credential,
  Principal,
  UserDirectory,
  UserState,
} from '../authenticator.js';
import { authFailed } from '../../errors.js';
import { PERMISSIONS_BATCH, type DjangoProxy } from './client.js';

/**
 * Re-checks through the permissions endpoint: Django's answer for the content types and whether
 * the user is active; `inner`, when the users were found by a directory of their own (a token or
 * a session read from the database), for whether they still exist and their credentials' stamps.
 * The endpoint cannot list a group's members: a group message re-checks every live user given.
 */
function proxyDirectory(proxy: DjangoProxy, inner: UserDirectory | undefined): UserDirectory {
  return {
    batchSize: Math.min(PERMISSIONS_BATCH, inner?.batchSize ?? PERMISSIONS_BATCH),
    async readUsers(userIds) {
      const [answers, found] = await Promise.all([
        proxy.permissionsOf(userIds, { fresh: true }),
        inner?.readUsers(userIds),
      ]);
      const states = new Map<string, UserState>();
      for (const id of userIds) {
        const answer = answers.get(id);
        const state = found?.get(id);
        if (!answer || (found !== undefined && state === undefined)) continue;
        states.set(id, {
          isActive: answer.isActive && (state?.isActive ?? true),
          credentialStamps: state?.credentialStamps ?? new Set(),
          contentTypeIds: answer.contentTypeIds,
        });
      }
      return states;
    },
    groupMembers: async (_groupIds, userIds) => [...userIds],
    forget(userIds) {
      proxy.forget(userIds);
      inner?.forget(userIds);
    },
  };
}

function cookieHeader(credential: Credential): string {
  const header = credential.headers.cookie;
  return Array.isArray(header) ? header.join('; ') : (header ?? '');
}

export interface ProxyAuthenticatorOptions {
  /**
   * Whether the Cookie header goes to Django. Only with the site's origins named (as for --auth
   * session) and an Origin header: a cookie rides along with any page's request.
   */
  readonly forwardCookie: boolean;
}

/** --auth proxy: the user is Django's answer; what they may see, the permissions endpoint's. */
export function createProxyAuthenticator(
  proxy: DjangoProxy,
  options: ProxyAuthenticatorOptions,
): Authenticator {
  const cookieOf = (credential: Credential): string =>
    options.forwardCookie && credential.headers.origin !== undefined
      ? cookieHeader(credential)
      : '';
  return {
    carries: (credential) => credential.token !== '' || cookieOf(credential) !== '',
    directory: proxyDirectory(proxy, undefined),
    async authenticate(credential) {
      const identity = await proxy.identify(credential.token, cookieOf(credential));
      return { ...identity, contentTypeIds: new Set() };
    },
    async check() {},
    async close() {},
  };
}

/** The principal `inner` found, with what Django's permissions endpoint says the user may see. */
export function withProxyPermissions(inner: Authenticator, proxy: DjangoProxy): Authenticator {
  return {
    ...inner,
    directory: proxyDirectory(proxy, inner.directory),
    async authenticate(credential): Promise<Principal> {
      const principal = await inner.authenticate(credential);
      const answer = (await proxy.permissionsOf([principal.userId])).get(principal.userId);
      if (!answer?.isActive)
        throw authFailed(`user ${principal.userId} unknown or inactive for Django`);
      return { ...principal, contentTypeIds: answer.contentTypeIds };
    },
  };
}
