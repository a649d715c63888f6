import { parseArgs } from '../../src/config.js';
import { SERVE_OPTIONS, startSidecast, type Sidecast, type StartOptions } from '../../src/app.js';
import type { Authenticator, Principal, UserState } from '../../src/auth/authenticator.js';
import { authFailed } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';

/** Server options as `sidecast serve` would parse them from these flags (port 0, memory bus). */
export function serveOptions(flags: readonly string[] = []) {
  return parseArgs(
    SERVE_OPTIONS,
    ['--port', '0', '--bus', 'memory', '--log-level', 'silent', ...flags],
    {},
  ).options;
}

/**
 * A table-driven authenticator for component tests of the server itself: the token is looked up in
 * `users`. The real django-sesame authenticator has its own unit and integration tests.
 */
export function tableAuthenticator(
  users: Record<string, Principal>,
): Authenticator & { calls: number } {
  const table = new Map(Object.entries(users));
  return {
    calls: 0,
    async authenticate({ token }) {
      this.calls++;
      const principal = table.get(token);
      if (!principal) throw authFailed('unknown test token');
      return principal;
    },
    async check() {},
    async close() {},
  };
}

/** A user of directoryAuthenticator, as the database would hold them now. */
export interface TableUser {
  contentTypeIds: number[];
  isActive: boolean;
  /** Stands for the password: tokens accepted under another one are revoked. */
  stamp: string;
}

/**
 * tableAuthenticator with a directory: users live in `users` (edit them to change the "database"),
 * tokens name them, and re-checks read them again, each call recorded in `userReads`.
 */
export function directoryAuthenticator(
  tokens: Record<string, string>,
  users: Record<string, TableUser>,
): Authenticator & { userReads: string[][] } {
  const userReads: string[][] = [];
  return {
    userReads,
    async authenticate({ token }) {
      const userId = tokens[token];
      const user = userId === undefined ? undefined : users[userId];
      if (userId === undefined || !user?.isActive) throw authFailed('unknown test token');
      const contentTypeIds = new Set(user.contentTypeIds);
      return { userId, username: userId, contentTypeIds, credentialStamp: user.stamp };
    },
    directory: {
      batchSize: 100,
      async readUsers(ids) {
        userReads.push([...ids]);
        const states = new Map<string, UserState>();
        for (const id of ids) {
          const user = users[id];
          if (!user) continue;
          const { isActive, stamp, contentTypeIds } = user;
          states.set(id, {
            isActive,
            credentialStamps: new Set([stamp]),
            contentTypeIds: new Set(contentTypeIds),
          });
        }
        return states;
      },
      groupMembers: async () => [],
      forget: () => undefined,
    },
    async check() {},
    async close() {},
  };
}

export function principal(userId: string, contentTypeIds: number[]): Principal {
  return { userId, username: userId, contentTypeIds: new Set(contentTypeIds) };
}

export async function startTestServer(
  flags: readonly string[],
  start: Omit<StartOptions, 'options'>,
): Promise<Sidecast> {
  return startSidecast({ options: serveOptions(flags), logger: createLogger('silent'), ...start });
}

export function event(contentTypeId: number | null, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    model: 'thing',
    object: 'x',
    message: '',
    ...extra,
    content_type_id: contentTypeId,
  });
}
