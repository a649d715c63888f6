import { closeOf } from '../errors.js';
import type { Connection } from './lifecycle.js';
import type { OpenConnections } from './open-connections.js';

/** How long drain waits for the last clients to finish their close handshake. */
const DRAIN_GRACE_MS = 2000;
/** Close waves per second of --drain-seconds. */
const WAVES_PER_SECOND = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Closes every open connection with 1001, spread over `seconds`: closing everyone at once would
 * send every client to the other instances in one wave. `flush` then writes at once what the
 * write batcher still holds corked (close frames queue behind the events already there). Resolves
 * once all have closed, or a grace period after the last wave for clients that never answer.
 */
export async function drainConnections(
  connections: OpenConnections<Connection>,
  seconds: number,
  flush: () => void,
): Promise<void> {
  const all = [...connections];
  const waves = Math.max(1, Math.min(all.length, Math.ceil(seconds * WAVES_PER_SECOND)));
  const perWave = Math.ceil(all.length / waves);
  const gap = all.length === 0 ? 0 : (seconds * 1000) / waves;
  const { code, reason } = closeOf('DRAINING');
  for (let i = 0; i < all.length; i += perWave) {
    for (const connection of all.slice(i, i + perWave))
      connection.close(code, reason, DRAIN_GRACE_MS);
    if (i + perWave < all.length) await sleep(gap);
  }
  flush();
  await connections.whenEmpty(DRAIN_GRACE_MS + 500);
}
