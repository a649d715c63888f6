import type { InterestListener } from '../router.js';

/**
 * Which content types this process's live connections may see, across its routers (one per
 * protocol), for a bus that routes by interest (Bus.setInterest). A content type that gains its
 * first recipient is passed on at once, so a new connection does not wait for its events; one
 * that loses its last is dropped only after `holdMs` without any, so that clients that reconnect
 * or come and go do not make the bus subscribe and unsubscribe again and again.
 */
export interface Interest {
  /** A listener for each router (createRouter's argument); the union of all is what counts. */
  listener(): InterestListener;
  /** What the bus was last told. */
  current(): ReadonlySet<number>;
  /** Cancels the pending drops and ignores what the routers say from then on. */
  close(): void;
}

export function createInterest(
  apply: (contentTypeIds: ReadonlySet<number>) => void,
  holdMs: number,
): Interest {
  /** How many routers have recipients for each content type. */
  const routers = new Map<number, number>();
  const wanted = new Set<number>();
  const drops = new Map<number, NodeJS.Timeout>();
  /** Closed with the server: the connections it then closes change nothing. */
  let closed = false;

  function gained(id: number): void {
    if (closed) return;
    const count = (routers.get(id) ?? 0) + 1;
    routers.set(id, count);
    const drop = drops.get(id);
    if (drop) {
      clearTimeout(drop);
      drops.delete(id);
    }
    if (wanted.has(id)) return;
    wanted.add(id);
    apply(new Set(wanted));
  }

  function lost(id: number): void {
    if (closed) return;
    const count = (routers.get(id) ?? 1) - 1;
    if (count > 0) {
      routers.set(id, count);
      return;
    }
    routers.delete(id);
    if (drops.has(id)) return;
    const drop = setTimeout(() => {
      drops.delete(id);
      if (routers.has(id)) return;
      wanted.delete(id);
      apply(new Set(wanted));
    }, holdMs);
    drop.unref();
    drops.set(id, drop);
  }

  return {
    listener: () => ({ gained, lost }),
    current: () => new Set(wanted),
    close() {
      closed = true;
      for (const drop of drops.values()) clearTimeout(drop);
      drops.clear();
    },
  };
}
