import { isSidecastError, SidecastError } from '../errors.js';
import type { Bus } from './bus.js';

/**
 * Publishing from sidecast's own entry points (POST /publish, `sidecast publish`): one way to
 * publish a batch and one way to say that it failed, whichever bus carries it.
 */

/** What publishing needs of a bus. */
export type Publisher = Pick<Bus, 'publish'>;

/** The error a driver's publish() fails with: `bus` is the driver's describe(), `detail` why. */
export function publishFailed(bus: string, detail: string, cause?: unknown): SidecastError {
  return new SidecastError('BUS_UNAVAILABLE', `cannot publish to ${bus}: ${detail}`, { cause });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A batch that stopped at its first failure; `published` events went out before it. */
export class PublishError extends SidecastError {
  readonly published: number;
  readonly total: number;

  constructor(message: string, published: number, total: number, cause: unknown) {
    super('BUS_UNAVAILABLE', message, { cause });
    this.published = published;
    this.total = total;
  }
}

/**
 * Publishes `payloads` one after the other, each once the bus has taken the one before, and
 * stops at the first failure: the events after it are not sent, so the publisher can send again
 * from the first one that failed without sending any twice. Throws a PublishError whose message
 * names the bus (from the driver's publishFailed()) and, for more than one event, how many were
 * published.
 */
export async function publishEvents(bus: Publisher, payloads: readonly string[]): Promise<void> {
  for (let published = 0; published < payloads.length; published++) {
    try {
      await bus.publish(payloads[published]!);
    } catch (error) {
      throw batchFailed(error, published, payloads.length);
    }
  }
}

function batchFailed(error: unknown, published: number, total: number): PublishError {
  // A bus given by an embedding program may fail otherwise; it is still the bus that failed.
  const why = isSidecastError(error, 'BUS_UNAVAILABLE')
    ? error.message
    : `cannot publish: ${messageOf(error)}`;
  const progress = total > 1 ? ` (${published} of ${total} events were published)` : '';
  return new PublishError(`${why}${progress}`, published, total, error);
}
