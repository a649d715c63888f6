import cluster, { type Worker } from 'node:cluster';
import type { Bus, BusHandler } from './bus.js';

/**
 * The memory bus across the worker processes of one `sidecast serve`: a worker sends each
 * published payload to the primary, which hands it to every worker (itself included), so
 * `--bus memory --workers N` still reaches every client of this server.
 */
interface RelayMessage {
  readonly sidecastEvent: string;
}

function isRelayMessage(message: unknown): message is RelayMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as RelayMessage).sidecastEvent === 'string'
  );
}

/** Runs in the primary: relays every worker's events to all workers. */
export function relayEventsBetweenWorkers(): void {
  cluster.on('message', (_worker: Worker, message: unknown) => {
    if (!isRelayMessage(message)) return;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) worker.send(message);
    }
  });
}

/** Runs in a worker. */
export function createClusterMemoryBus(): Bus {
  const handlers = new Set<BusHandler>();
  const onMessage = (message: unknown) => {
    if (!isRelayMessage(message)) return;
    for (const handler of handlers) handler(message.sidecastEvent);
  };
  return {
    kind: 'memory',
    async start(handler) {
      handlers.add(handler);
      if (handlers.size === 1) process.on('message', onMessage);
    },
    async publish(payload) {
      const message: RelayMessage = { sidecastEvent: payload };
      process.send?.(message);
    },
    status: () => ({ ready: process.connected }),
    async close() {
      handlers.clear();
      process.off('message', onMessage);
    },
  };
}
