/**
 * The index from content type id to the connections allowed to see it. Each connection gets a
 * slot number; each content type a bitset over the slots. That costs one bit per connection per
 * content type instead of a hash-set entry per pair (a few bytes per connection instead of
 * hundreds), and routing an event walks one bitset: O(connections / 32) words plus one call per
 * recipient, never a scan of every connection's permissions.
 */
export interface Router<C> {
  add(connection: C, contentTypeIds: Iterable<number>): void;
  /**
   * Forgets a connection; adding it again later is allowed. Every bit of its slot is cleared,
   * so the next connection to take the slot can never inherit one.
   */
  remove(connection: C): void;
  /**
   * Makes a registered connection's content types exactly `contentTypeIds`, in place: the ones it
   * keeps never stop reaching it. Returns whether anything changed; unregistered: false.
   */
  update(connection: C, contentTypeIds: ReadonlySet<number>): boolean;
  /** Calls `visit` for every connection allowed to see the content type; returns how many. */
  forEachRecipient(contentTypeId: number, visit: (connection: C) => void): number;
  /** How many connections may see the content type. */
  recipientCount(contentTypeId: number): number;
  readonly connectionCount: number;
}

/**
 * Told when a content type gains its first recipient or loses its last: what a bus that routes by
 * interest subscribes to (src/server/interest.ts). Called from where a content type's bitset is
 * made and deleted, so every way a connection's permissions change reaches it.
 */
export interface InterestListener {
  gained(contentTypeId: number): void;
  lost(contentTypeId: number): void;
}

interface Bitset {
  words: Uint32Array;
  /** Bits set. */
  count: number;
}

export function createRouter<C>(interest?: InterestListener): Router<C> {
  const index = new Map<number, Bitset>();
  /** slot -> connection; holes are free slots. */
  const slots: (C | undefined)[] = [];
  const slotOf = new Map<C, number>();
  /** Freed slots, reused first so that the bitsets stay as short as the busiest moment. */
  const free: number[] = [];

  function setBit(id: number, slot: number): void {
    let bits = index.get(id);
    if (!bits) {
      index.set(id, (bits = { words: new Uint32Array(0), count: 0 }));
      interest?.gained(id);
    }
    const word = slot >>> 5;
    if (word >= bits.words.length) {
      const grown = new Uint32Array(Math.max(word + 1, bits.words.length * 2, 8));
      grown.set(bits.words);
      bits.words = grown;
    }
    const mask = 1 << (slot & 31);
    if ((bits.words[word]! & mask) === 0) {
      bits.words[word]! |= mask;
      bits.count++;
    }
  }

  function hasBit(bits: Bitset, slot: number): boolean {
    const word = slot >>> 5;
    return word < bits.words.length && (bits.words[word]! & (1 << (slot & 31))) !== 0;
  }

  function clearBit(id: number, bits: Bitset, slot: number): void {
    if (!hasBit(bits, slot)) return;
    bits.words[slot >>> 5]! &= ~(1 << (slot & 31));
    if (--bits.count === 0) {
      index.delete(id);
      interest?.lost(id);
    }
  }

  return {
    add(connection, contentTypeIds) {
      if (slotOf.has(connection)) return;
      const slot = free.pop() ?? slots.length;
      slots[slot] = connection;
      slotOf.set(connection, slot);
      for (const id of contentTypeIds) setBit(id, slot);
    },
    remove(connection) {
      const slot = slotOf.get(connection);
      if (slot === undefined) return;
      // A few hundred content types at most: clearing them all is cheap and always right.
      for (const [id, bits] of index) clearBit(id, bits, slot);
      slots[slot] = undefined;
      slotOf.delete(connection);
      free.push(slot);
    },
    update(connection, contentTypeIds) {
      const slot = slotOf.get(connection);
      if (slot === undefined) return false;
      let changed = false;
      for (const [id, bits] of index) {
        if (contentTypeIds.has(id) || !hasBit(bits, slot)) continue;
        clearBit(id, bits, slot);
        changed = true;
      }
      for (const id of contentTypeIds) {
        const bits = index.get(id);
        if (bits !== undefined && hasBit(bits, slot)) continue;
        setBit(id, slot);
        changed = true;
      }
      return changed;
    },
    forEachRecipient(contentTypeId, visit) {
      const bits = index.get(contentTypeId);
      if (!bits) return 0;
      const { words, count } = bits;
      for (let w = 0; w < words.length; w++) {
        let word = words[w]!;
        while (word !== 0) {
          const lowest = word & -word;
          word ^= lowest;
          // Checked again on the live bitset: a visit may have removed a later connection.
          if ((words[w]! & lowest) !== 0) visit(slots[(w << 5) + 31 - Math.clz32(lowest)]!);
        }
      }
      return count;
    },
    recipientCount(contentTypeId) {
      return index.get(contentTypeId)?.count ?? 0;
    },
    get connectionCount() {
      return slotOf.size;
    },
  };
}
