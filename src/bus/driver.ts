import type { Bus, BusObserver } from './bus.js';

/**
 * What a bus driver declares for the registry (./create-bus.ts). Its options live in the one
 * options table (src/config/options.ts) like every other; the driver names the ones it reads, and
 * every command that takes --bus takes them all, so that --help and the README list them.
 */
export interface BusDriver<Options extends object = object> {
  /** The value of --bus that chooses it. */
  readonly kind: string;
  /** What its events reach, for --bus's help: "shared by every instance". */
  readonly summary: string;
  /**
   * Whether its events reach only the process that publishes them (and that process's workers):
   * a publisher that exits right after publishing, like `sidecast publish`, cannot use it.
   */
  readonly local: boolean;
  /**
   * The names of the options it reads, in the order --help lists them. (The registry checks that
   * each is in the options table and that create() takes their values.)
   */
  readonly options: readonly string[];
  /** Makes the bus. Nothing is connected until start() or the first publish(). */
  readonly create: (options: Options, observer?: BusObserver) => Bus;
}
