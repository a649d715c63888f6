import type { OptionValues } from '../config/options.js';
import type { Bus, BusObserver } from './bus.js';
import type { BusDriver } from './driver.js';
import { memoryDriver } from './memory-bus.js';
import { natsDriver } from './nats-bus.js';
import { natsJetStreamDriver } from './nats-jetstream-bus.js';
import { redisDriver } from './redis-bus.js';
import { redisClusterDriver } from './redis-cluster-bus.js';
import { redisStreamsDriver } from './redis-streams-bus.js';

/**
 * The registry of bus drivers: --bus chooses one of these by its kind. A new driver is a file of
 * this folder that exports its BusDriver (./driver.ts), one entry here and its options in the
 * options table (src/config/options.ts).
 */
export const BUS_DRIVERS = [
  redisDriver,
  redisStreamsDriver,
  natsDriver,
  natsJetStreamDriver,
  redisClusterDriver,
  memoryDriver,
] as const;

type Driver = (typeof BUS_DRIVERS)[number];
export type BusKind = Driver['kind'];

/** The kinds, in the order --help lists them. */
export const BUS_KINDS: readonly BusKind[] = BUS_DRIVERS.map((driver) => driver.kind);

export type BusOptionName = 'bus' | Driver['options'][number];

/**
 * The options of every command that takes --bus: --bus, then each driver's own, each once
 * (drivers may share one, as the two Redis buses share --redis).
 */
export const BUS_OPTIONS: readonly BusOptionName[] = [
  ...new Set<BusOptionName>([
    'bus',
    ...BUS_DRIVERS.flatMap((driver): readonly BusOptionName[] => driver.options),
  ]),
];

export type BusOptions = OptionValues<BusOptionName>;

export function busDriver(kind: BusKind): Driver {
  // --bus is parsed against BUS_KINDS, so the kind is always there.
  return BUS_DRIVERS.find((driver) => driver.kind === kind)!;
}

export function createBus(options: BusOptions, observer?: BusObserver): Bus {
  // Every driver's create() takes the values of every bus option.
  const driver: BusDriver<BusOptions> = busDriver(options.bus);
  return driver.create(options, observer);
}
