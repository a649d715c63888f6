/**
 * The UserDirectory of the authenticators that read the Django database (sesame, session,
 * simplejwt), and of several authenticators enabled together. Each scheme names the user state
 * its credentials depend on with a stamp of its own, prefixed by the scheme, so that a chain can
 * tell whose credential a connection holds.
 */
import { createHash } from 'node:crypto';
import type { DjangoStore, DjangoUser } from '../django/store.js';
import { authUnavailable, isSidecastError } from '../errors.js';
import type { UserDirectory, UserState } from './authenticator.js';
import type { UserSnapshots } from './user-snapshots.js';

/** Users one batched re-read covers: two queries of at most this many parameters each. */
export const DIRECTORY_BATCH = 500;

/** `scheme:` and a digest of `state`: what a credential depends on, never the state itself. */
export function credentialStamp(scheme: string, state: string): string {
  return `${scheme}:${createHash('sha256').update(state).digest('base64url').slice(0, 22)}`;
}

export interface DjangoDirectoryOptions {
  readonly snapshots: Pick<UserSnapshots, 'readMany' | 'forget'>;
  readonly store: Pick<DjangoStore, 'groupMembers'>;
  /** The stamp a credential of this user would carry if issued now; undefined: none. */
  readonly stampOf: (user: DjangoUser) => string | undefined;
  /** UserDirectory.endedSessions, for a scheme whose connections hold sessions. */
  readonly endedSessions?: (sessions: readonly string[]) => Promise<ReadonlySet<string>>;
}

/**
 * A database that cannot answer means "try again", never "refused": its errors become
 * AUTH_UNAVAILABLE (1013), while the authenticator's own refusals pass unchanged. Shared by the
 * authenticators that read Django's database and by their re-checks.
 */
export async function unavailableOnDatabaseError<T>(
  work: () => Promise<T>,
  during = 'during authentication',
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isSidecastError(error) && error.code !== 'DB_UNAVAILABLE') throw error;
    throw authUnavailable(`database unavailable ${during}`, error);
  }
}

/** unavailableOnDatabaseError for the reads of a re-check. */
const guarded = <T>(work: () => Promise<T>) =>
  unavailableOnDatabaseError(work, 'during a re-check');

export function createDjangoDirectory(options: DjangoDirectoryOptions): UserDirectory {
  const { snapshots, store, stampOf, endedSessions } = options;
  return {
    ...(endedSessions === undefined
      ? {}
      : { endedSessions: (sessions) => guarded(() => endedSessions(sessions)) }),
    batchSize: DIRECTORY_BATCH,
    async readUsers(userIds) {
      const read = await guarded(() => snapshots.readMany(userIds));
      const states = new Map<string, UserState>();
      for (const [pk, { user, ids }] of read) {
        const stamp = stampOf(user);
        states.set(pk, {
          isActive: user.isActive,
          credentialStamps: new Set(stamp === undefined ? [] : [stamp]),
          contentTypeIds: ids,
        });
      }
      return states;
    },
    groupMembers: (groupIds, userIds) => guarded(() => store.groupMembers(groupIds, userIds)),
    forget: (userIds) => snapshots.forget(userIds),
  };
}

/**
 * The directory of several authenticators enabled together: each member reads the users (they
 * share one database, so this costs one read per member and batch), and a user is as the first
 * member found them, with every member's stamps, so that each connection is checked against the
 * scheme it authenticated with. A user one member no longer finds is gone.
 */
export function mergeDirectories(directories: readonly UserDirectory[]): UserDirectory | undefined {
  if (directories.length <= 1) return directories[0];
  const [first] = directories as [UserDirectory, ...UserDirectory[]];
  return {
    batchSize: Math.min(...directories.map((directory) => directory.batchSize)),
    async readUsers(userIds) {
      const answers = await Promise.all(directories.map((d) => d.readUsers(userIds)));
      const states = new Map<string, UserState>();
      for (const id of userIds) {
        const found = answers.map((answer) => answer.get(id));
        if (found.some((state) => state === undefined)) continue;
        const [state] = found as [UserState, ...UserState[]];
        states.set(id, {
          isActive: found.every((each) => each!.isActive),
          credentialStamps: new Set(found.flatMap((each) => [...each!.credentialStamps])),
          contentTypeIds: state.contentTypeIds,
        });
      }
      return states;
    },
    groupMembers: (groupIds, userIds) => first.groupMembers(groupIds, userIds),
    async endedSessions(sessions) {
      // Each member ends only the sessions of its own scheme.
      const answers = await Promise.all(
        directories.map((directory) => directory.endedSessions?.(sessions) ?? new Set<string>()),
      );
      return new Set(answers.flatMap((answer) => [...answer]));
    },
    forget(userIds) {
      for (const directory of directories) directory.forget(userIds);
    },
  };
}
