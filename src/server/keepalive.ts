import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Connection } from './lifecycle.js';

export interface Keepalive {
  stop(): void;
}

/**
 * Pings every open connection each `intervalSeconds` (0: never) and terminates those that did
 * not answer the previous ping: a peer that vanished without a close (a laptop lid, a dropped
 * route) would otherwise hold its socket and its place in the router forever.
 */
export function startKeepalive(
  connections: Iterable<Connection>,
  intervalSeconds: number,
  metrics: Metrics,
  logger: Logger,
): Keepalive {
  if (intervalSeconds <= 0) return { stop() {} };
  const timer = setInterval(() => {
    for (const connection of connections) {
      if (connection.heartbeat()) continue;
      metrics.keepaliveTimeouts.inc();
      logger.debug({ user: connection.userId }, 'dead peer dropped');
      connection.terminate();
    }
  }, intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
