import type { IncomingHttpHeaders } from 'node:http';

/** Who a connection belongs to, and which events it may receive. */
export interface Principal {
  /** The user's primary key as text, stable across connections (used for per-user limits). */
  readonly userId: string;
  /** Value of the user model's USERNAME_FIELD, for logs and the demo. */
  readonly username: string;
  /** Ids of the content types whose events this connection receives. */
  readonly contentTypeIds: ReadonlySet<number>;
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
  /** Resolves when the backing store answers; rejects with a SidecastError otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}
