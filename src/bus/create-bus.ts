import type { BusKind } from '../config.js';
import type { Bus, BusObserver } from './bus.js';
import cluster from 'node:cluster';
import { createClusterMemoryBus } from './cluster-bus.js';
import { createMemoryBus } from './memory-bus.js';
import { createRedisBus } from './redis-bus.js';

export interface BusOptions {
  readonly bus: BusKind;
  readonly redis: string;
  readonly channel: string;
}

export function createBus(options: BusOptions, observer?: BusObserver): Bus {
  switch (options.bus) {
    case 'memory':
      return cluster.isWorker ? createClusterMemoryBus() : createMemoryBus();
    case 'redis':
      return createRedisBus({
        url: options.redis,
        channel: options.channel,
        ...(observer ? { observer } : {}),
      });
  }
}
