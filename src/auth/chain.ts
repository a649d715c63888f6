import type { Authenticator, Credential, UserDirectory } from './authenticator.js';
import { mergeDirectories } from './user-directory.js';
import { authFailed, isSidecastError } from '../errors.js';

/** Whether `authenticator` reads something `credential` holds (a non-empty token by default). */
export function carries(authenticator: Authenticator, credential: Credential): boolean {
  return authenticator.carries?.(credential) ?? credential.token !== '';
}

function readsOf(members: readonly Authenticator[]): Authenticator['reads'] {
  const kinds = new Set(members.map((member) => member.reads ?? 'token'));
  return kinds.size === 1 ? [...kinds][0] : 'either';
}

/**
 * Several authenticators as one, tried in the order --auth lists them: each that finds its
 * credential in the connection's gets a turn, and the first to accept it decides. When every one
 * refuses, the refusal is AUTH_UNAVAILABLE if any could not reach its backing service (the
 * client should retry), else AUTH_FAILED.
 */
export function chainAuthenticators(members: readonly Authenticator[]): Authenticator {
  const directories = members.flatMap((member): UserDirectory[] =>
    member.directory === undefined ? [] : [member.directory],
  );
  // Only when every member can re-read its users: one that cannot would leave theirs unchecked.
  const directory =
    directories.length === members.length ? mergeDirectories(directories) : undefined;
  return {
    ...(directory === undefined ? {} : { directory }),
    reads: readsOf(members),
    carries: (credential) => members.some((member) => carries(member, credential)),
    async authenticate(credential) {
      let unavailable: unknown;
      let refusal: unknown;
      for (const member of members) {
        if (!carries(member, credential)) continue;
        try {
          return await member.authenticate(credential);
        } catch (error) {
          if (isSidecastError(error, 'AUTH_FAILED')) refusal ??= error;
          else unavailable ??= error;
        }
      }
      throw unavailable ?? refusal ?? authFailed('no credential any authenticator reads');
    },
    async check() {
      await Promise.all(members.map((member) => member.check()));
    },
    async close() {
      await Promise.all(members.map((member) => member.close()));
    },
  };
}
