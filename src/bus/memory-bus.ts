import cluster from 'node:cluster';
import type { Bus, BusHandler } from './bus.js';
import { createClusterMemoryBus } from './cluster-bus.js';
import type { BusDriver } from './driver.js';

/**
 * The in-process bus: a single server without Redis. Delivery is asynchronous (a microtask later),
 * like a real bus, so a publisher never runs fan-out inside its own call stack.
 */
export function createMemoryBus(): Bus {
  const handlers = new Set<BusHandler>();
  const controlHandlers = new Set<(message: string) => void>();
  return {
    kind: 'memory',
    describe: () => 'the memory bus of this process',
    async start(onMessage) {
      handlers.add(onMessage);
    },
    async publish(payload) {
      queueMicrotask(() => {
        for (const handler of handlers) handler(payload);
      });
    },
    control: {
      describe: () => 'the memory bus of this process, control channel',
      async start(onMessage) {
        controlHandlers.add(onMessage);
      },
      async publish(message) {
        queueMicrotask(() => {
          for (const handler of controlHandlers) handler(message);
        });
      },
    },
    status: () => ({ ready: true }),
    async close() {
      handlers.clear();
      controlHandlers.clear();
    },
  };
}

/** In one process, or across the workers of one `sidecast serve --workers N`. */
export const memoryDriver = {
  kind: 'memory',
  summary: 'this process only',
  local: true,
  options: [],
  create: () => (cluster.isWorker ? createClusterMemoryBus() : createMemoryBus()),
} as const satisfies BusDriver;
