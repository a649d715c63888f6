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

/**
 * What a bus that keeps history will offer: what was published after a position, so that a
 * client reconnecting or a process restarting misses nothing. Declared for the drivers to come;
 * no driver implements it yet, and nothing calls it.
 */
export interface BusHistory {
  /**
   * Hands every payload held after `after` to `onMessage`, in order, and resolves with the
   * position of the last one (or `after` when there was none). Rejects with SidecastError
   * 'BUS_UNAVAILABLE' when `after` is from another epoch or older than what is still held: the
   * caller then knows it has missed events.
   */
  readAfter(after: StreamPosition, onMessage: BusHandler): Promise<StreamPosition>;
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
  /** Present on drivers that keep history (none yet: see BusHistory). */
  readonly history?: BusHistory;
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
