import type { Bus, BusHandler } from './bus.js';

/**
 * The in-process bus: a single server without Redis. Delivery is asynchronous (a microtask later),
 * like a real bus, so a publisher never runs fan-out inside its own call stack.
 */
export function createMemoryBus(): Bus {
  const handlers = new Set<BusHandler>();
  return {
    kind: 'memory',
    async start(onMessage) {
      handlers.add(onMessage);
    },
    async publish(payload) {
      queueMicrotask(() => {
        for (const handler of handlers) handler(payload);
      });
    },
    status: () => ({ ready: true }),
    async close() {
      handlers.clear();
    },
  };
}
