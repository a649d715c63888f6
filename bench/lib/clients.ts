/** The orchestrator's side of the load-generating processes: start, command, collect. */
import { spawn, type ChildProcess } from 'node:child_process';
import type {
  ChurnResult,
  ChurnSpec,
  ClientStats,
  Command,
  ConnectResult,
  Reply,
  Request,
  ServerTarget,
  Tick,
} from '../load/protocol.js';
import { Histogram } from './histogram.js';

/** Loopback source addresses: 8 × 28k ephemeral ports, far past what one address allows. */
export const LOCAL_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

/** Every client process's stats added up: the same counters, one histogram, CPU in seconds. */
export interface MergedStats extends Omit<ClientStats, 'histogram' | 'cpuMicros'> {
  readonly histogram: Histogram;
  readonly cpuSeconds: number;
}

export class ClientPool {
  readonly #children: ChildProcess[];
  readonly #waiting = new Map<
    number,
    { resolve(value: unknown): void; reject(error: Error): void }
  >();
  readonly #received: number[];
  #nextId = 1;

  private constructor(children: ChildProcess[]) {
    this.#children = children;
    this.#received = children.map(() => 0);
    children.forEach((child, index) => {
      child.on('message', (message: Reply | Tick) => {
        if ('type' in message) {
          this.#received[index] = message.received;
          return;
        }
        const waiter = this.#waiting.get(message.id);
        if (!waiter) return;
        this.#waiting.delete(message.id);
        if (message.ok) waiter.resolve(message.result);
        else waiter.reject(new Error(message.error));
      });
      child.on('exit', (code) => {
        for (const waiter of this.#waiting.values())
          waiter.reject(new Error(`a client process exited (${code})`));
        this.#waiting.clear();
      });
    });
  }

  /** `count` processes running `script`, pinned to `cpu` with taskset. */
  static start(script: string, count: number, cpu: string): ClientPool {
    const children = Array.from({ length: count }, () =>
      spawn('taskset', ['-c', cpu, process.execPath, script], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      }),
    );
    return new ClientPool(children);
  }

  get pids(): number[] {
    return this.#children.map((child) => child.pid ?? 0);
  }

  /** Event deliveries counted by the latest ticks (see `ticks`). */
  get tickedReceived(): number {
    return this.#received.reduce((a, b) => a + b, 0);
  }

  #request<T>(index: number, command: Command): Promise<T> {
    const id = this.#nextId++;
    const request: Request = { id, command };
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#children[index]!.send(request);
    });
  }

  #all<T>(command: Command): Promise<T[]> {
    return Promise.all(this.#children.map((_, index) => this.#request<T>(index, command)));
  }

  /** Opens one connection per token, spread over the processes, targets and source addresses. */
  async connect(
    targets: readonly ServerTarget[],
    tokens: readonly string[],
    shards: readonly number[],
    shardCount: number,
    inFlight: number,
    timeoutMs: number,
  ): Promise<ConnectResult> {
    const n = this.#children.length;
    const results = await Promise.all(
      this.#children.map((_, index) =>
        this.#request<ConnectResult>(index, {
          type: 'connect',
          targets,
          tokens: tokens.filter((_token, i) => i % n === index),
          shards: shards.filter((_shard, i) => i % n === index),
          shardCount,
          localAddresses: LOCAL_ADDRESSES.filter((_address, i) => i % n === index % 8),
          inFlight: Math.max(1, Math.ceil(inFlight / n)),
          timeoutMs,
        }),
      ),
    );
    const failures: Record<string, number> = {};
    for (const result of results)
      for (const [key, value] of Object.entries(result.failures))
        failures[key] = (failures[key] ?? 0) + value;
    return {
      opened: results.reduce((total, result) => total + result.opened, 0),
      failed: results.reduce((total, result) => total + result.failed, 0),
      failures,
    };
  }

  async stats(): Promise<MergedStats> {
    const all = await this.#all<ClientStats>({ type: 'stats' });
    const histogram = new Histogram();
    const closes: Record<string, number> = {};
    for (const one of all) {
      histogram.add(one.histogram);
      for (const [code, count] of Object.entries(one.closes))
        closes[code] = (closes[code] ?? 0) + count;
    }
    const sumShards = (pick: (stats: ClientStats) => readonly number[]) =>
      all.reduce<number[]>(
        (total, stats) => total.map((value, i) => value + (pick(stats)[i] ?? 0)),
        new Array<number>(Math.max(0, ...all.map((s) => pick(s).length))).fill(0),
      );
    const sum = (pick: (stats: ClientStats) => number) =>
      all.reduce((total, stats) => total + pick(stats), 0);
    return {
      open: sum((s) => s.open),
      received: sum((s) => s.received),
      probed: sum((s) => s.probed),
      lastFirstProbeAt: Math.max(...all.map((s) => s.lastFirstProbeAt)),
      openedByShard: sumShards((s) => s.openedByShard),
      probedByShard: sumShards((s) => s.probedByShard),
      accepted: sum((s) => s.accepted),
      refused: sum((s) => s.refused),
      closes,
      welcomed: sum((s) => s.welcomed),
      done: sum((s) => s.done),
      recovered: sum((s) => s.recovered),
      replayed: sum((s) => s.replayed),
      lastDoneAt: Math.max(...all.map((s) => s.lastDoneAt)),
      histogram,
      cpuSeconds: sum((s) => s.cpuMicros) / 1e6,
    };
  }

  async reset(): Promise<void> {
    await this.#all({ type: 'reset' });
    this.#received.fill(0);
  }

  async ticks(everyMs: number): Promise<void> {
    await this.#all({ type: 'ticks', everyMs });
  }

  /** Protocol v1: the connections of the last connect() again, resuming when `since`. */
  async reconnect(since: boolean, inFlight: number, timeoutMs: number): Promise<ConnectResult> {
    const n = this.#children.length;
    const results = await this.#all<ConnectResult>({
      type: 'reconnect',
      since,
      inFlight: Math.max(1, Math.ceil(inFlight / n)),
      timeoutMs,
    });
    return {
      opened: results.reduce((total, result) => total + result.opened, 0),
      failed: results.reduce((total, result) => total + result.failed, 0),
      failures: Object.assign({}, ...results.map((result) => result.failures)) as Record<
        string,
        number
      >,
    };
  }

  /** Starts connections that drop about every `dropEveryMs` and reconnect (see load/churn.ts). */
  async churnStart(
    clients: readonly ChurnSpec[],
    dropEveryMs: number,
    reconnectDelayMs: number,
  ): Promise<void> {
    const n = this.#children.length;
    await Promise.all(
      this.#children.map((_, index) =>
        this.#request(index, {
          type: 'churn-start',
          clients: clients.filter((_client, i) => i % n === index),
          localAddresses: LOCAL_ADDRESSES.filter((_address, i) => i % n === index % 8),
          dropEveryMs,
          reconnectDelayMs,
        }),
      ),
    );
  }

  /** Stops the drops; the number of churn connections open (v1: welcomed) again. */
  async churnStop(timeoutMs: number): Promise<number> {
    const ready = await this.#all<number>({ type: 'churn-stop', timeoutMs });
    return ready.reduce((a, b) => a + b, 0);
  }

  async churnReport(): Promise<ChurnResult[]> {
    return (await this.#all<ChurnResult[]>({ type: 'churn-report' })).flat();
  }

  async closeAll(): Promise<void> {
    await this.#all({ type: 'close' });
  }

  stop(): void {
    for (const child of this.#children) child.kill('SIGKILL');
  }
}
