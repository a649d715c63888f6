/**
 * The index from content type id to the connections allowed to see it. Adding and removing a
 * connection costs O(its content types); routing an event costs O(recipients), never O(connections).
 */
export interface Router<C> {
  add(connection: C, contentTypeIds: Iterable<number>): void;
  remove(connection: C, contentTypeIds: Iterable<number>): void;
  /** The connections for one content type; do not mutate. Empty when nobody may see it. */
  recipients(contentTypeId: number): ReadonlySet<C>;
  readonly connectionCount: number;
}

const EMPTY: ReadonlySet<never> = new Set();

export function createRouter<C>(): Router<C> {
  const index = new Map<number, Set<C>>();
  let connectionCount = 0;
  return {
    add(connection, contentTypeIds) {
      for (const id of contentTypeIds) {
        let set = index.get(id);
        if (!set) index.set(id, (set = new Set()));
        set.add(connection);
      }
      connectionCount++;
    },
    remove(connection, contentTypeIds) {
      for (const id of contentTypeIds) {
        const set = index.get(id);
        if (!set) continue;
        set.delete(connection);
        if (set.size === 0) index.delete(id);
      }
      connectionCount--;
    },
    recipients(contentTypeId) {
      return index.get(contentTypeId) ?? EMPTY;
    },
    get connectionCount() {
      return connectionCount;
    },
  };
}
