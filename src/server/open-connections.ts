/**
 * Every open WebSocket, whatever its state: what --max-connections counts, keepalive pings and
 * drain closes. Drain waits on it for the last clients to finish their close handshake.
 */
export class OpenConnections<C> implements Iterable<C> {
  readonly #all = new Set<C>();
  #whenEmpty: (() => void)[] = [];

  get size(): number {
    return this.#all.size;
  }

  add(connection: C): void {
    this.#all.add(connection);
  }

  delete(connection: C): void {
    this.#all.delete(connection);
    if (this.#all.size > 0 || this.#whenEmpty.length === 0) return;
    const waiters = this.#whenEmpty;
    this.#whenEmpty = [];
    for (const wake of waiters) wake();
  }

  [Symbol.iterator](): Iterator<C> {
    return this.#all.values();
  }

  /** Resolves once no connection is open, or after `timeoutMs` whatever is left. */
  whenEmpty(timeoutMs: number): Promise<void> {
    if (this.#all.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#whenEmpty.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
