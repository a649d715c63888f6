import { randomBytes } from 'node:crypto';
import type { StreamInfo } from './stream-replies.js';

/**
 * The epoch of a stream's history, kept in Redis next to the stream (`<stream>:epoch`) so that
 * every instance gives out the same one. Whoever finds it missing creates it; whoever sees the
 * history lost replaces it, with a compare-and-set, so that instances noticing the same loss at
 * once agree on one new value: the first wins, the others adopt it.
 */

export function epochKey(stream: string): string {
  return `${stream}:epoch`;
}

export function newEpoch(): string {
  return randomBytes(8).toString('hex');
}

/** SET NX then GET: the value in Redis, created with ARGV[1] if there was none. */
export const ENSURE_EPOCH = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`;

/**
 * Replaces the epoch ARGV[1] (this instance's) with ARGV[2]; if another instance replaced it
 * already, leaves theirs. A missing key is replaced too: Redis lost it with the history.
 * Returns the value in Redis afterwards.
 */
export const ROTATE_EPOCH = `
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return current
`;

/** What one check of the history found in Redis. */
export interface HistoryCheck {
  /** The epoch key's value, null if it is missing. */
  readonly epoch: string | null;
  /** The stream, undefined if the key does not exist. */
  readonly stream: StreamInfo | undefined;
}

/** What this process saw at its previous check. */
export interface HistorySeen {
  readonly exists: boolean;
  readonly entriesAdded: number;
}

/**
 * Whether the history this process knows was lost since `seen`: the epoch key gone (Redis
 * restarted empty, or flushed), the stream gone, or a stream that has had fewer entries added
 * than before (deleted and made anew). A trim is not a loss: `entries-added` never goes down.
 */
export function historyLost(seen: HistorySeen, now: HistoryCheck): boolean {
  if (now.epoch === null) return true;
  if (now.stream === undefined) return seen.exists;
  return now.stream.entriesAdded < seen.entriesAdded;
}
