import type { DropReason } from '../metrics.js';

/**
 * A bus carries event payloads from publishers (Django, POST /publish, `sidecast publish`) to every
 * sidecast process. Drivers only move strings; routing and fan-out live once, in the router.
 * Each driver is one file of this folder, declared in the registry (./drivers.ts).
 */

/**
 * Where an event sits in a bus that keeps history (a Redis stream, a NATS JetStream), so that a
 * client or a process can later ask for what came after it. Both fields are opaque outside the
 * driver: only the driver that gave a position compares or parses it.
 */
export interface StreamPosition {
  /** The event's place in the history (a stream entry id, a sequence number). */
  readonly offset: string;
  /**
   * Which history the offset belongs to: it changes when the history starts again (a stream
   * deleted and created anew), so that an offset from before is never taken for one after.
   */
  readonly epoch: string;
}

/**
 * Receives each payload from the bus. Drivers that keep history also pass its position; drivers
 * that do not (Redis pub/sub, memory) call it with the payload alone.
 */
export type BusHandler = (payload: string, position?: StreamPosition) => void;

/** One event of a history, as a replay hands it back. */
export interface HistoryEntry {
  readonly payload: string;
  /** Its offset in the history's current epoch. */
  readonly offset: string;
}

/** Why a replay could not promise every event after a position. */
export type ReplayGap =
  /** The position is from another history (the stream was deleted, or Redis lost it). */
  | 'epoch'
  /** Events after the position have been trimmed from the history. */
  | 'trimmed'
  /** More events follow the position than the replay cap allows. */
  | 'too_many'
  /** The offset is not one this driver gives out, or lies after the live feed. */
  | 'invalid'
  /** The history could not be read now (the bus is down or did not answer). */
  | 'unavailable';

export type ReplayResult =
  | { readonly complete: true; readonly entries: readonly HistoryEntry[] }
  | { readonly complete: false; readonly gap: ReplayGap };

/**
 * What a bus that keeps history offers (Redis Streams, later NATS JetStream), so that a client
 * reconnecting, to this process or another, misses nothing. Offsets are opaque outside the
 * driver: only `compare` orders them.
 */
export interface BusHistory {
  /**
   * The position of the newest event this process has handed to its handler, or, before the
   * first, the end of the history when the process started: the live feed continues after it.
   */
  latest(): StreamPosition;
  /** Orders two offsets of the current epoch (negative, zero, positive), as the history does. */
  compare(a: string, b: string): number;
  /**
   * Every entry after `since` up to and including `until` (a position latest() gave), in order;
   * incomplete, with the reason, when `since` is from another epoch, trimmed away, not a valid
   * offset or after `until`, or when more than `limit` entries follow it. Never partial: a
   * complete result holds every entry of that range. Reads are bounded and shared: recent
   * history comes from a bounded window in memory, and concurrent reads of one range are one.
   */
  replay(since: StreamPosition, until: string, limit: number): Promise<ReplayResult>;
}

export interface BusStatus {
  readonly ready: boolean;
  /** Why the bus is not ready, for /readyz and logs. */
  readonly detail?: string;
}

export interface Bus {
  /** The driver's kind, as --bus names it. */
  readonly kind: string;
  /** The bus for messages, e.g. `Redis at redis://127.0.0.1:6379/1, channel "events"`. */
  describe(): string;
  /**
   * Subscribes and starts calling `onMessage`. With `failFast`, rejects with SidecastError
   * 'BUS_UNAVAILABLE' if the bus cannot be reached now; otherwise keeps retrying in the background.
   */
  start(onMessage: BusHandler, options?: { failFast?: boolean }): Promise<void>;
  /**
   * Publishes one payload. Fails with SidecastError 'BUS_UNAVAILABLE' made by publishFailed()
   * (./publish.ts), which names this bus. Batches go through publishEvents() there.
   */
  publish(payload: string): Promise<void>;
  status(): BusStatus;
  close(): Promise<void>;
  /** Present on drivers that keep history (see BusHistory). */
  readonly history?: BusHistory;
  /**
   * The bus's control channel, beside its events: small messages saying whose permissions
   * changed (src/server/live-permissions.ts acts on them). Closed by the bus's close().
   */
  readonly control: ControlChannel;
  /**
   * Present on drivers that route by interest (nats, redis-cluster): the broker sends a process
   * only the events of the content types it subscribed to. The server calls this with every
   * content type some live connection of this process may see (src/server/interest.ts), at once
   * when one appears and some time after one loses its last connection; before the first call the
   * bus receives no events. Drivers that carry every event to every process (memory, redis,
   * redis-streams, nats-jetstream) omit it.
   */
  setInterest?(contentTypeIds: ReadonlySet<number>): void;
}

/**
 * A channel of control messages: no history, no ordering with the events. Messages sent while
 * the channel was disconnected are lost; the server then re-reads every live user once it is
 * back (`onMissed`), and the periodic refresh catches up on whatever else goes astray.
 */
export interface ControlChannel {
  /** Where control messages travel, e.g. `Redis at redis://…/1, channel "sidecast:control"`. */
  describe(): string;
  /**
   * Subscribes and calls `onMessage` with each message's text; retries in the background.
   * Calls `onMissed` each time it is subscribed again after losing its connection (its own, or
   * the one it shares with the events): messages sent meanwhile were lost.
   */
  start(onMessage: (message: string) => void, onMissed?: () => void): Promise<void>;
  /** Publishes one message; fails with SidecastError 'BUS_UNAVAILABLE', as Bus.publish does. */
  publish(message: string): Promise<void>;
}

/** Hooks a driver calls so the server can log and count what happens to the bus. */
export interface BusObserver {
  onDown?(detail: string): void;
  onUp?(): void;
  onReconnect?(): void;
  /** The bus answers again after it stopped answering (reported through onDown), same connection. */
  onResumed?(): void;
  /**
   * A message that can never be delivered: counted under `reason`, logged with `detail` (for
   * example 'not_utf8' and "not UTF-8" for bytes that are not UTF-8).
   */
  onDropped?(reason: DropReason, detail: string): void;
}
