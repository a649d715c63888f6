import type { HistoryEntry } from './bus.js';

/**
 * How a history's offsets are read and ordered: Redis stream entry ids (stream-ids.ts) or
 * JetStream sequence numbers. Parsed once per event, compared as values, never as text.
 */
export interface PositionOrder<P> {
  /** The position an offset names, or undefined for text that names none. */
  parse(offset: string): P | undefined;
  compare(a: P, b: P): number;
}

/** One event of the window: its id (parsed once) and payload. */
export interface WindowEntry<P> {
  readonly id: string;
  readonly parsed: P;
  readonly payload: string;
  /**
   * The entry every replay of this event hands out: one object, so what a reader derives from it
   * once (its content type, its frame) serves every client that replays it.
   */
  readonly entry: HistoryEntry;
  /** What it costs to keep: the payload's UTF-16 length twice, plus the id. */
  readonly bytes: number;
}

export interface WindowBounds {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

/** The byte bound unless configured: 64 MiB. */
export const WINDOW_MAX_BYTES = 64 * 1024 * 1024;

/** Only the oldest entries are ever removed, so the array is compacted now and then, not shifted. */
const COMPACT_AFTER = 1024;

function cost(id: string, payload: string): number {
  return 2 * (payload.length + id.length) + 64;
}

/**
 * The most recent events this process read, bounded by entries and bytes, so that memory does
 * not grow with the stream and a replay of recent history asks nothing of the broker. It holds
 * every event of the stream after `floor` up to the newest one added: contiguous, with no hole,
 * which is what lets it answer a replay on its own. Removing the oldest entry moves the floor up
 * to it.
 */
export class StreamWindow<P> {
  private readonly bounds: WindowBounds;
  private readonly order: PositionOrder<P>;
  private entries: WindowEntry<P>[] = [];
  private head = 0;
  private totalBytes = 0;
  private floorId: P;

  constructor(bounds: WindowBounds, order: PositionOrder<P>, floor: P) {
    this.bounds = bounds;
    this.order = order;
    this.floorId = floor;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Every event after this id (exclusive) is in the window. */
  get floor(): P {
    return this.floorId;
  }

  /** Forgets everything: what is held now belongs to a history that was lost. */
  reset(floor: P): void {
    this.entries = [];
    this.head = 0;
    this.totalBytes = 0;
    this.floorId = floor;
  }

  /**
   * Appends the newest event; ids must increase. An event larger than the whole byte bound is
   * not kept, and the floor moves past it, so the window stays contiguous. A caller that holds
   * the position already passes it, saving a parse.
   */
  push(id: string, payload: string, position?: P): void {
    const parsed = position ?? this.order.parse(id);
    if (parsed === undefined) return;
    const bytes = cost(id, payload);
    if (bytes > this.bounds.maxBytes || this.bounds.maxEntries === 0) {
      this.reset(parsed);
      return;
    }
    this.entries.push({ id, parsed, payload, entry: { offset: id, payload }, bytes });
    this.totalBytes += bytes;
    while (this.size > this.bounds.maxEntries || this.totalBytes > this.bounds.maxBytes) {
      this.dropOldest();
    }
  }

  private dropOldest(): void {
    const oldest = this.entries[this.head]!;
    this.head++;
    this.totalBytes -= oldest.bytes;
    this.floorId = oldest.parsed;
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Whether every event after `since` is here. */
  covers(since: P): boolean {
    return this.order.compare(since, this.floorId) >= 0;
  }

  /** The events after `since` up to and including `until`, or undefined past `max` of them. */
  range(since: P, until: P, max: number): WindowEntry<P>[] | undefined {
    const start = this.firstAfter(since);
    const found: WindowEntry<P>[] = [];
    for (let index = start; index < this.entries.length; index++) {
      const entry = this.entries[index]!;
      if (this.order.compare(entry.parsed, until) > 0) break;
      if (found.length === max) return undefined;
      found.push(entry);
    }
    return found;
  }

  /** Index of the first entry after `id`: a binary search, the window being in id order. */
  private firstAfter(id: P): number {
    let low = this.head;
    let high = this.entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.order.compare(this.entries[middle]!.parsed, id) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
