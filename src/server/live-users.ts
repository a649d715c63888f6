/**
 * The users with live connections on this process, and which connections each holds: the limit
 * of --max-connections-per-user, and where a re-check of a user's permissions finds the
 * connections to apply it to. Only users with at least one live connection have an entry, so
 * the map is as large as the users online; a user with one connection (the common case) costs
 * that connection's pointer, not a set.
 */
export class LiveUsers<C> {
  readonly #max: number;
  readonly #users = new Map<string, C | Set<C>>();

  /** `max` 0 means no limit. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Users with a live connection now. */
  get size(): number {
    return this.#users.size;
  }

  has(userId: string): boolean {
    return this.#users.has(userId);
  }

  /** Live connections the user holds now. */
  countOf(userId: string): number {
    const held = this.#users.get(userId);
    if (held === undefined) return 0;
    return held instanceof Set ? held.size : 1;
  }

  /** A copy: closing one of them while walking it changes nothing here. */
  connectionsOf(userId: string): C[] {
    const held = this.#users.get(userId);
    if (held === undefined) return [];
    return held instanceof Set ? [...held] : [held];
  }

  userIds(): string[] {
    return [...this.#users.keys()];
  }

  /** Adds the connection to its user, unless that would pass the limit (then false). */
  tryAdd(userId: string, connection: C): boolean {
    const held = this.#users.get(userId);
    if (this.#max > 0 && this.countOf(userId) >= this.#max) return false;
    if (held === undefined) this.#users.set(userId, connection);
    else if (held instanceof Set) held.add(connection);
    else if (held !== connection) this.#users.set(userId, new Set([held, connection]));
    return true;
  }

  /** Takes back a connection added by tryAdd; the user goes with their last one. */
  remove(userId: string, connection: C): void {
    const held = this.#users.get(userId);
    if (held === connection) this.#users.delete(userId);
    else if (held instanceof Set && held.delete(connection) && held.size === 0)
      this.#users.delete(userId);
  }
}
