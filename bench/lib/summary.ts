/**
 * From raw rounds to figures: per-connection memory, medians with their spread, and ratios to
 * the naive baseline computed round by round (each round measures every server back to back).
 */
import type { MemoryReading, VariantKey } from './servers.js';
import type { FanoutResult, LatencyResult, StormResult } from './phases.js';

export interface MemoryResult {
  readonly connections: number;
  readonly empty: MemoryReading;
  readonly idle: MemoryReading;
}

export interface VariantRound {
  readonly storm?: StormResult;
  readonly memory?: MemoryResult;
  readonly capacity?: FanoutResult;
  readonly latency: readonly LatencyResult[];
  readonly big?: MemoryResult & { readonly storm: StormResult };
  /** Why a part of this round is missing, if it is. */
  readonly errors: readonly string[];
}

export type Round = Partial<Record<VariantKey, VariantRound>>;

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(values: readonly number[]): Spread | undefined {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (finite.length === 0) return undefined;
  const middle = Math.floor(finite.length / 2);
  const median =
    finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2;
  return { median, min: finite[0]!, max: finite[finite.length - 1]!, n: finite.length };
}

export function perConnection(memory: MemoryResult | undefined, part: 'rss' | 'heap'): number {
  if (!memory || memory.connections === 0) return NaN;
  return (memory.idle[part] - memory.empty[part]) / memory.connections;
}

/** A figure taken from one variant's round. */
export type Metric = (round: VariantRound) => number;

export interface MetricSpec {
  /** Stable name, for the targets. */
  readonly key: string;
  readonly name: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly pick: Metric;
  readonly digits?: number;
}

export const LOAD_NAMES = ['25%', '50%', '75%'];

export interface Sizes {
  readonly clients: number;
  readonly bigClients: number;
  readonly bigProcesses: number;
}

function thousands(count: number): string {
  return count >= 1000 && count % 1000 === 0 ? `${count / 1000}k` : String(count);
}

export function metricSpecs(loads: readonly number[], sizes: Sizes): MetricSpec[] {
  const small = thousands(sizes.clients);
  const big = `${thousands(sizes.bigClients)}, ${sizes.bigProcesses} processes`;
  const specs: MetricSpec[] = [
    {
      key: 'rss',
      name: `Idle RSS per connection (${small})`,
      unit: 'KiB',
      better: 'lower',
      pick: (r) => perConnection(r.memory, 'rss') / 1024,
      digits: 2,
    },
    {
      key: 'heap',
      name: `Idle JS heap per connection (${small})`,
      unit: 'KiB',
      better: 'lower',
      pick: (r) => perConnection(r.memory, 'heap') / 1024,
      digits: 2,
    },
    {
      key: 'big-rss',
      name: `Idle RSS per connection (${big})`,
      unit: 'KiB',
      better: 'lower',
      pick: (r) => perConnection(r.big, 'rss') / 1024,
      digits: 2,
    },
    {
      key: 'big-heap',
      name: `Idle JS heap per connection (${big})`,
      unit: 'KiB',
      better: 'lower',
      pick: (r) => perConnection(r.big, 'heap') / 1024,
      digits: 2,
    },
    {
      key: 'capacity',
      name: `Fan-out capacity (${small} clients)`,
      unit: 'deliveries/s',
      better: 'higher',
      pick: (r) => r.capacity?.rate ?? NaN,
      digits: 0,
    },
  ];
  loads.forEach((load, index) => {
    const label = `${Math.round(load * 100)}% load`;
    for (const [name, key] of [
      ['p50', 'p50'],
      ['p99', 'p99'],
      ['max', 'max'],
    ] as const) {
      specs.push({
        key: `latency-${key}-${index}`,
        name: `Latency ${name} at ${label}`,
        unit: 'ms',
        better: 'lower',
        pick: (r) => r.latency[index]?.[key] ?? NaN,
        digits: 1,
      });
    }
  });
  specs.push(
    {
      key: 'storm',
      name: `Storm: ${small} clients authenticated`,
      unit: 's',
      better: 'lower',
      pick: (r) => (r.storm?.complete ? r.storm.seconds : NaN),
      digits: 2,
    },
    {
      key: 'storm-db',
      name: 'Storm: database transactions',
      unit: 'per client',
      better: 'lower',
      pick: (r) => (r.storm ? r.storm.transactions / Math.max(1, r.storm.opened) : NaN),
      digits: 2,
    },
  );
  return specs;
}

/** value / baseline per round, for rounds where both exist. */
export function ratios(
  rounds: readonly Round[],
  variant: VariantKey,
  baseline: VariantKey,
  pick: Metric,
): number[] {
  const out: number[] = [];
  for (const round of rounds) {
    const mine = round[variant];
    const base = round[baseline];
    if (!mine || !base) continue;
    const value = pick(mine);
    const reference = pick(base);
    if (Number.isFinite(value) && Number.isFinite(reference) && reference !== 0)
      out.push(value / reference);
  }
  return out;
}

export function values(rounds: readonly Round[], variant: VariantKey, pick: Metric): number[] {
  return rounds.flatMap((round) => {
    const mine = round[variant];
    return mine ? [pick(mine)] : [];
  });
}
