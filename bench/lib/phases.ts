/**
 * The measurements, each bounded in time: the authentication storm (which also leaves the
 * connections every later phase reuses), idle memory, fan-out capacity (closed loop), and
 * latency at a fixed offered load (open loop). Every phase checks what the clients received
 * against what the population says they must receive.
 */
import { createClock } from '../load/protocol.js';

/** CPU of the load generators plus this process, which publishes and shares their core. */
function loadCpu(clientSeconds: number): number {
  const own = process.cpuUsage();
  return clientSeconds + (own.user + own.system) / 1e6;
}
import type { ClientPool } from './clients.js';
import type { BenchDatabase } from './database.js';
import type { Histogram } from './histogram.js';
import { listenDrops, sleep, treeCpuSeconds } from './proc.js';
import type { Publisher } from './publisher.js';
import type { RunningServer } from './servers.js';

export const now = createClock();

export interface Phase {
  readonly pool: ClientPool;
  readonly publisher: Publisher;
  readonly server: RunningServer;
}

export interface StormResult {
  /** From the first connection attempt until the last client received its first probe. */
  readonly seconds: number;
  readonly complete: boolean;
  readonly opened: number;
  readonly live: number;
  readonly failures: Record<string, number>;
  readonly closes: Record<string, number>;
  /** Database transactions counted when the storm began (see countTransactions). */
  readonly transactionsBefore: number;
  /** Monotonic µs when the storm phase ended. */
  readonly endedAt: number;
  /** Filled in by countTransactions once PostgreSQL has published its statistics. */
  transactions: number;
  readonly listenDrops: number;
  /** Probe interval when the last client was reached: the resolution of `seconds`. */
  readonly resolutionMs: number;
  readonly serverCpu: number;
  readonly clientCpu: number;
}

/**
 * Opens one connection per token at once (at most `inFlight` upgrades pending) and probes until
 * every client has received a probe. Each tick sends one probe per shard that has open
 * connections not yet reached; the tick interval grows with elapsed time (3%, at least 50 ms) so
 * that probing stays a small part of any server's work.
 */
export async function storm(
  phase: Phase,
  tokens: readonly string[],
  shards: readonly number[],
  db: BenchDatabase | undefined,
  inFlight: number,
  timeoutMs: number,
): Promise<StormResult> {
  const { pool, publisher, server } = phase;
  await pool.reset();
  if (db) await sleep(1500); // let PostgreSQL publish the start-up queries' statistics
  const transactionsBefore = db ? await db.transactions() : 0;
  const dropsBefore = listenDrops();
  const serverCpuBefore = treeCpuSeconds(server.pids());
  const clientCpuBefore = loadCpu((await pool.stats()).cpuSeconds);
  const started = now();
  const shardCount = Math.max(0, ...shards) + 1;
  const connecting = pool.connect(server.targets, tokens, shards, shardCount, inFlight, timeoutMs);
  let connected: Awaited<typeof connecting> | undefined;
  void connecting.then((result) => (connected = result));
  let probes = 0;
  let nextProbe = started;
  let interval = 50;
  let stats = await pool.stats();
  while (now() - started < timeoutMs * 1000) {
    const elapsedMs = (now() - started) / 1000;
    interval = Math.max(50, elapsedMs * 0.03);
    if (now() >= nextProbe) {
      for (let shard = 0; shard < shardCount; shard++) {
        if ((stats.openedByShard[shard] ?? 0) > (stats.probedByShard[shard] ?? 0))
          publisher.probe(shard, ++probes);
      }
      nextProbe = now() + interval * 1000;
    }
    await sleep(25);
    stats = await pool.stats();
    if (stats.probed >= tokens.length) break;
    // Everything settled and nobody left to reach: failures, not slowness.
    if (connected && stats.probed >= connected.opened - countOf(stats.closes)) {
      if (connected.opened < tokens.length || countOf(stats.closes) > 0) break;
    }
  }
  const result = connected ?? (await connecting);
  const serverCpu = treeCpuSeconds(server.pids()) - serverCpuBefore;
  return {
    seconds: (stats.lastFirstProbeAt - started) / 1e6,
    complete: stats.probed >= tokens.length,
    opened: result.opened,
    live: stats.probed,
    failures: result.failures,
    closes: stats.closes,
    transactionsBefore,
    endedAt: now(),
    transactions: NaN,
    listenDrops: listenDrops() - dropsBefore,
    resolutionMs: interval,
    serverCpu,
    clientCpu: loadCpu(stats.cpuSeconds) - clientCpuBefore,
  };
}

/** A busy backend publishes its counters only after 10 s idle (PGSTAT_IDLE_INTERVAL). */
const STATS_DELAY_MS = 11_000;

/**
 * Sets `result.transactions`: transactions in the run's database since the storm began, read
 * once PostgreSQL has published the storm's statistics. Called after later phases so that the
 * wait usually costs nothing; the server must still be running (its connections idle).
 */
export async function countTransactions(result: StormResult, db: BenchDatabase): Promise<void> {
  const waited = (now() - result.endedAt) / 1000;
  if (waited < STATS_DELAY_MS) await sleep(STATS_DELAY_MS - waited);
  result.transactions = (await db.transactions()) - result.transactionsBefore;
}

function countOf(record: Record<string, number>): number {
  return Object.values(record).reduce((total, value) => total + value, 0);
}

export interface FanoutResult {
  /** Deliveries per second over the measured window. */
  readonly rate: number;
  readonly events: number;
  /** Deliveries the population says should have happened but did not (after draining). */
  readonly missing: number;
  /** Connections the server closed during the phase. */
  readonly closed: number;
  /** CPU used over the measured window, as a share of one core. */
  readonly serverCpu: number;
  readonly clientCpu: number;
}

/**
 * Capacity: keeps deliveries outstanding (published but not yet received) so that the server
 * always has work, and counts deliveries per second after a warm-up. The amount outstanding
 * follows the observed rate (a quarter second of work, at least `minWindow`) but stays under
 * `maxWindow`, so no client is pushed near a server's slow-consumer limit.
 */
export async function capacity(
  phase: Phase,
  audience: readonly number[],
  minWindow: number,
  maxWindow: number,
  warmupMs: number,
  measureMs: number,
): Promise<FanoutResult> {
  const { pool, publisher, server } = phase;
  await pool.reset();
  await pool.ticks(10);
  let expected = 0;
  let events = 0;
  const started = now();
  let mark: { at: number; received: number; server: number; client: number } | undefined;
  let measured: { rate: number; serverCpu: number; clientCpu: number } | undefined;
  let window = Math.min(minWindow, maxWindow);
  let sample = { at: started, received: 0 };
  while (!measured) {
    const at = now();
    const elapsedMs = (at - started) / 1000;
    if (at - sample.at >= 100_000) {
      const observed = ((pool.tickedReceived - sample.received) * 1e6) / (at - sample.at);
      window = Math.min(maxWindow, Math.max(minWindow, observed / 4));
      sample = { at, received: pool.tickedReceived };
    }
    if (!mark && elapsedMs >= warmupMs) {
      const stats = await pool.stats();
      mark = {
        at: now(),
        received: stats.received,
        server: treeCpuSeconds(server.pids()),
        client: loadCpu(stats.cpuSeconds),
      };
    }
    if (mark && elapsedMs >= warmupMs + measureMs) {
      const stats = await pool.stats();
      const seconds = (now() - mark.at) / 1e6;
      measured = {
        rate: (stats.received - mark.received) / seconds,
        serverCpu: (treeCpuSeconds(server.pids()) - mark.server) / seconds,
        clientCpu: (loadCpu(stats.cpuSeconds) - mark.client) / seconds,
      };
      break;
    }
    while (expected - pool.tickedReceived < window) {
      expected += audience[publisher.event(now())]!;
      events++;
    }
    await sleep(1);
  }
  await pool.ticks(0);
  const missing = await drain(pool, expected, 20_000);
  const closed = countOf((await pool.stats()).closes);
  return { ...measured, events, missing, closed };
}

export interface LatencyResult {
  readonly offeredRate: number;
  readonly events: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly missing: number;
  readonly closed: number;
  readonly clientCpu: number;
  readonly serverCpu: number;
}

/**
 * Open loop: events leave at their scheduled times whatever the server does, and each carries
 * its scheduled time, so a server that falls behind is charged for the wait (no coordinated
 * omission). `deliveriesPerSecond` is turned into an event rate with the mean audience.
 */
export async function latency(
  phase: Phase,
  audience: readonly number[],
  deliveriesPerSecond: number,
  durationMs: number,
): Promise<LatencyResult> {
  const { pool, publisher, server } = phase;
  const meanAudience = audience.reduce((a, b) => a + b, 0) / audience.length;
  const eventsPerSecond = deliveriesPerSecond / meanAudience;
  await pool.reset();
  const before = loadCpu((await pool.stats()).cpuSeconds);
  const serverBefore = treeCpuSeconds(server.pids());
  const started = now() + 1000;
  const total = Math.max(1, Math.round((eventsPerSecond * durationMs) / 1000));
  let expected = 0;
  let sent = 0;
  while (sent < total) {
    // Timers wake about every millisecond; each event still carries its scheduled time.
    const dueAt = (n: number) => started + (n * 1e6) / eventsPerSecond;
    while (sent < total && dueAt(sent) <= now()) {
      expected += audience[publisher.event(dueAt(sent))]!;
      sent++;
    }
    if (sent < total) await sleep(Math.max(1, Math.min(50, (dueAt(sent) - now()) / 1000)));
  }
  const missing = await drain(pool, expected, 15_000);
  const stats = await pool.stats();
  const seconds = (now() - started) / 1e6;
  const histogram: Histogram = stats.histogram;
  return {
    offeredRate: deliveriesPerSecond,
    events: total,
    p50: histogram.quantile(0.5) / 1000,
    p99: histogram.quantile(0.99) / 1000,
    max: histogram.max / 1000,
    missing,
    closed: countOf(stats.closes),
    clientCpu: (loadCpu(stats.cpuSeconds) - before) / seconds,
    serverCpu: (treeCpuSeconds(server.pids()) - serverBefore) / seconds,
  };
}

/**
 * Waits until `expected` deliveries have arrived, then a little longer to catch extra ones.
 * Returns expected minus received: positive when deliveries were lost, negative for duplicates.
 */
async function drain(pool: ClientPool, expected: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { received } = await pool.stats();
    if (received >= expected) break;
    if (Date.now() > deadline) return expected - received;
    await sleep(50);
  }
  await sleep(300);
  return expected - (await pool.stats()).received;
}
