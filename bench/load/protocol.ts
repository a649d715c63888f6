/** Messages between the orchestrator and its load-generating client processes (over IPC). */
import type { Protocol } from './ws-client.js';

export interface ServerTarget {
  readonly host: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export type Command =
  | {
      readonly type: 'connect';
      /** Connection i goes to targets[i % targets.length]. */
      readonly targets: readonly ServerTarget[];
      readonly tokens: readonly string[];
      /** Probe shard of each token's user (see population.ts). */
      readonly shards: readonly number[];
      readonly shardCount: number;
      readonly localAddresses: readonly string[];
      /** Upgrades in progress at once; the next connection starts as one finishes. */
      readonly inFlight: number;
      /** Give up on connections still not open after this long. */
      readonly timeoutMs: number;
    }
  | { readonly type: 'stats' }
  | { readonly type: 'reset' }
  /** Push {type: 'tick'} with the delivery count every `everyMs` (0 stops). */
  | { readonly type: 'ticks'; readonly everyMs: number }
  | { readonly type: 'close' }
  /**
   * Protocol v1: opens again the connections of the last 'connect' (same tokens, targets and
   * addresses), each resuming after the last offset it received when `since` is true.
   */
  | {
      readonly type: 'reconnect';
      readonly since: boolean;
      readonly inFlight: number;
      readonly timeoutMs: number;
    }
  /** Connections that drop and reconnect on a schedule, counting what each receives. */
  | {
      readonly type: 'churn-start';
      readonly clients: readonly ChurnSpec[];
      readonly localAddresses: readonly string[];
      readonly dropEveryMs: number;
      readonly reconnectDelayMs: number;
    }
  /** Stops dropping; resolves once every churn connection is open (v1: welcomed) again. */
  | { readonly type: 'churn-stop'; readonly timeoutMs: number }
  /** What each churn connection received; closes them. */
  | { readonly type: 'churn-report' };

export interface ChurnSpec {
  /** Caller's label, e.g. the variant's index. */
  readonly group: number;
  /** The user's index in the population. */
  readonly user: number;
  readonly target: ServerTarget;
  readonly token: string;
}

export interface ChurnResult {
  readonly group: number;
  readonly user: number;
  /** Sequence numbers received, each once. */
  readonly seqs: readonly number[];
  /** Events received again after they had already arrived. */
  readonly duplicates: number;
  readonly connections: number;
  /** v1: welcomes that said recovered false to a connection that sent since. */
  readonly unrecovered: number;
}

export interface Request {
  readonly id: number;
  readonly command: Command;
}

export interface ConnectResult {
  readonly opened: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
}

export interface ClientStats {
  /** Connections open now. */
  readonly open: number;
  /** Benchmark events received (probes not included). */
  readonly received: number;
  /** Connections that have received at least one probe since the last reset. */
  readonly probed: number;
  /** Monotonic µs at which the most recent of those first probes arrived. */
  readonly lastFirstProbeAt: number;
  /** Per probe shard: connections whose upgrade succeeded, and those reached by a probe. */
  readonly openedByShard: readonly number[];
  readonly probedByShard: readonly number[];
  /** Socket.IO connect acknowledgements: accepted and refused tokens. */
  readonly accepted: number;
  readonly refused: number;
  /** Close codes of connections that had opened, e.g. {"1011": 3}. */
  readonly closes: Record<string, number>;
  readonly histogram: { readonly counts: Float64Array; readonly max: number };
  /** Protocol v1: connections welcomed, and those done (welcomed, and their replay received). */
  readonly welcomed: number;
  readonly done: number;
  /** v1 welcomes with recovered true, and the replayed events they announced. */
  readonly recovered: number;
  readonly replayed: number;
  /** Monotonic µs at which the most recent connection became done. */
  readonly lastDoneAt: number;
  /** user + system CPU of this process since it started, µs. */
  readonly cpuMicros: number;
}

export type Reply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

export interface Tick {
  readonly type: 'tick';
  readonly received: number;
}

/** Monotonic microseconds shared by every process on the machine (CLOCK_MONOTONIC). */
export function createClock(): () => number {
  const offset = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
  return () => performance.now() * 1000 + offset;
}
