import { randomBytes } from 'node:crypto';
import type { BusHistory, StreamPosition } from '../bus/bus.js';

/**
 * Where protocol v1 takes the offsets of live events from. On a bus with history they are the
 * bus's own, so a client can resume from them on any instance. On a bus without (memory, Redis
 * pub/sub) a v1 client still gets increasing offsets, from a counter of this process under an
 * epoch drawn at random when it starts: nothing can be resumed from them (`recoverable: false`),
 * and a client that brings one back to another process or after a restart finds another epoch.
 */
export interface LivePositions {
  /** Whether positions can be resumed from (the bus keeps history). */
  readonly recoverable: boolean;
  readonly history: BusHistory | undefined;
  /** The position the live feed continues after: what a welcome tells. */
  latest(): StreamPosition;
  /**
   * The offset of the event being dispatched now, given the bus's position for it. Called once per
   * event that has v1 recipients. Undefined when a bus with history gave no position: such an
   * event has no offset a client could resume after.
   */
  offsetOf(position: StreamPosition | undefined): string | undefined;
}

export function createLivePositions(history: BusHistory | undefined): LivePositions {
  if (history !== undefined) {
    return {
      recoverable: true,
      history,
      latest: () => history.latest(),
      offsetOf: (position) => position?.offset,
    };
  }
  const epoch = randomBytes(8).toString('hex');
  let counter = 0;
  return {
    recoverable: false,
    history: undefined,
    latest: () => ({ epoch, offset: String(counter) }),
    offsetOf: () => String(++counter),
  };
}
