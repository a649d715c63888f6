import type { IncomingHttpHeaders } from 'node:http';

/** Who a connection belongs to, and which events it may receive. */
export interface Principal {
  /** The user's primary key as text, stable across connections (used for per-user limits). */
  readonly userId: string;
  /** Value of the user model's USERNAME_FIELD, for logs and the demo. */
  readonly username: string;
  /** Ids of the content types whose events this connection receives. */
  readonly contentTypeIds: ReadonlySet<number>;
  /**
   * A digest of the user state the credential depends on, prefixed by its scheme (django-sesame:
   * the password hash, and the email with SESAME_INVALIDATE_ON_EMAIL_CHANGE; a session: the
   * password): when a re-read of the user no longer gives it, the credential would no longer be
   * accepted, and the connection is closed. Absent: nothing the user can change revokes it.
   */
  readonly credentialStamp?: string;
  /**
   * The server-side session this connection rests on, as `scheme:key` (a Django session), when
   * its scheme has one: logging out deletes it, and a re-check then closes the connection (see
   * UserDirectory.endedSessions). Secret like the credential itself: never logged.
   */
  readonly session?: string;
}

/** A user as a re-check finds them now. */
export interface UserState {
  readonly isActive: boolean;
  /**
   * The stamps a credential of this user would carry if issued now (see
   * Principal.credentialStamp), one per scheme that stamps.
   */
  readonly credentialStamps: ReadonlySet<string>;
  readonly contentTypeIds: ReadonlySet<number>;
}

/**
 * Where the live users' current state is read again, so that permission changes and revocations
 * reach open connections (src/server/live-permissions.ts). Reads are batched: one call covers many
 * users in a few queries.
 */
export interface UserDirectory {
  /**
   * The current state of each of these users (Principal.userId values); a user missing from the
   * answer no longer exists. Rejects with a SidecastError when the backing store cannot answer.
   */
  readUsers(userIds: readonly string[]): Promise<ReadonlyMap<string, UserState>>;
  /** Which of the members of these groups are among `userIds` (group ids as text). */
  groupMembers(groupIds: readonly string[], userIds: readonly string[]): Promise<string[]>;
  /**
   * Which of these sessions (Principal.session values) have ended: logged out, flushed or
   * expired. Sessions of schemes it does not know are never ended. Read fresh every time, never
   * from a snapshot. Absent: no scheme of this directory has sessions.
   */
  endedSessions?(sessions: readonly string[]): Promise<ReadonlySet<string>>;
  /** Drops what is remembered about these users (or everyone), so the next read is fresh. */
  forget(userIds: readonly string[] | 'all'): void;
  /** Most users readUsers and groupMembers take in one call. */
  readonly batchSize: number;
}

/** What a connecting client presents: each authenticator reads the parts its scheme uses. */
export interface Credential {
  /** The connection's first message (the guide's protocol: the whole message is the token). */
  readonly token: string;
  /** The WebSocket upgrade request's headers (Cookie, Authorization), for schemes reading them. */
  readonly headers: Readonly<IncomingHttpHeaders>;
}

/**
 * Turns a connection's credential into a Principal. Which one runs is chosen by --auth
 * (see create-authenticator.ts); each lives in a folder of its own under src/auth/.
 * Rejects with SidecastError 'AUTH_FAILED' (bad token, unknown or inactive user) or
 * 'AUTH_UNAVAILABLE' (the database could not answer: the client should retry).
 */
export interface Authenticator {
  authenticate(credential: Credential): Promise<Principal>;
  /** How live users are re-checked; absent when this scheme cannot read users again. */
  readonly directory?: UserDirectory;
  /**
   * Whether `credential` holds what this scheme reads; when several authenticators are enabled,
   * those it does not are skipped. Absent: a non-empty token.
   */
  carries?(credential: Credential): boolean;
  /**
   * Where the scheme finds its credential: the upgrade headers alone (no first message needed),
   * the token (the default), or either (several authenticators chained).
   */
  readonly reads?: 'headers' | 'token' | 'either';
  /** Resolves when the backing store answers; rejects with a SidecastError otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}
