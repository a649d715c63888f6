/**
 * A bus carries event payloads from publishers (Django, POST /publish, `sidecast publish`) to every
 * sidecast process. Drivers only move strings; routing and fan-out live once, in the router.
 */
export type BusHandler = (payload: string) => void;

export interface BusStatus {
  readonly ready: boolean;
  /** Why the bus is not ready, for /readyz and logs. */
  readonly detail?: string;
}

export interface Bus {
  readonly kind: string;
  /**
   * Subscribes and starts calling `onMessage`. With `failFast`, rejects with SidecastError
   * 'BUS_UNAVAILABLE' if the bus cannot be reached now; otherwise keeps retrying in the background.
   */
  start(onMessage: BusHandler, options?: { failFast?: boolean }): Promise<void>;
  publish(payload: string): Promise<void>;
  status(): BusStatus;
  close(): Promise<void>;
}

/** Hooks a driver calls so the server can log and count what happens to the bus. */
export interface BusObserver {
  onDown?(detail: string): void;
  onUp?(): void;
  onReconnect?(): void;
  /** The bus answers again after it stopped answering (reported through onDown), same connection. */
  onResumed?(): void;
  /** A message that can never be delivered (for example bytes that are not UTF-8). */
  onDropped?(reason: string): void;
}
