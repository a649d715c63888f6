/** Who a connection belongs to, and which events it may receive. */
export interface Principal {
  /** The user's primary key as text, stable across connections (used for per-user limits). */
  readonly userId: string;
  /** Value of the user model's USERNAME_FIELD, for logs and the demo. */
  readonly username: string;
  /** Ids of the content types whose events this connection receives. */
  readonly contentTypeIds: ReadonlySet<number>;
}

/**
 * Turns the first message of a connection into a Principal.
 * Rejects with SidecastError 'AUTH_FAILED' (bad token, unknown or inactive user) or
 * 'AUTH_UNAVAILABLE' (the database could not answer: the client should retry).
 */
export interface Authenticator {
  authenticate(token: string): Promise<Principal>;
  /** Resolves when the backing store answers; rejects with a SidecastError otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}
