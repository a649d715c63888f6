/**
 * `npm run bench` (add `-- --quick` for a small smoke run): builds sidecast, prepares the Python
 * peer's virtualenv and a fresh Django database on PostgreSQL, then measures the naive ws loop,
 * sidecast, the guide's Python server and Socket.IO in interleaved rounds with the same clients
 * and events through the same Redis, and writes bench/RESULTS.md. See bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientPool } from './lib/clients.js';
import type { BenchDatabase } from './lib/database.js';
import { audienceSizes, buildPopulation, MODEL_COUNT, probeShardOf } from './lib/population.js';
import { capacity, countTransactions, latency, storm, type Phase } from './lib/phases.js';
import { sleep } from './lib/proc.js';
import { Publisher } from './lib/publisher.js';
import { renderReport, type ReportInput } from './lib/report.js';
import { startServer, VARIANTS, type ServerContext, type Variant } from './lib/servers.js';
import { createBenchSite, prepareBench } from './lib/setup.js';
import type { MemoryResult, Round, VariantRound } from './lib/summary.js';
import { createMinter } from './lib/tokens.js';
import { parseSettings, type Settings } from './settings.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(repo, 'bench', '.work');

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

interface Run {
  readonly settings: Settings;
  readonly pool: ClientPool;
  readonly publisher: Publisher;
  readonly db: BenchDatabase;
  readonly context: ServerContext;
  readonly tokens: () => string[];
  readonly audience: readonly number[];
  /** Probe shard of each user. */
  readonly shards: readonly number[];
}

async function measureVariant(bench: Run, variant: Variant): Promise<VariantRound> {
  const { settings, pool, publisher, db } = bench;
  const errors: string[] = [];
  const result: { -readonly [K in keyof VariantRound]: VariantRound[K] } = {
    latency: [],
    errors,
  };
  const server = await startServer(variant, bench.context, 1);
  const phase: Phase = { pool, publisher, server };
  try {
    const empty = await server.memory();
    const tokens = bench.tokens();
    log(`${variant.key}: storm of ${tokens.length} clients`);
    result.storm = await storm(
      phase,
      tokens,
      bench.shards,
      db,
      settings.inFlight,
      settings.stormTimeoutMs,
    );
    const s = result.storm;
    log(
      `${variant.key}: ${s.live}/${tokens.length} live in ${s.seconds.toFixed(2)} s, ` +
        `server cpu ${s.serverCpu.toFixed(1)} s, clients ${s.clientCpu.toFixed(1)} s, ` +
        `listen drops ${s.listenDrops}, closes ${JSON.stringify(s.closes)}, ` +
        `failures ${JSON.stringify(s.failures)}`,
    );
    if (!s.complete) {
      errors.push(`storm incomplete: ${s.live} of ${tokens.length} clients reached`);
      await countTransactions(s, db);
      return result;
    }
    await sleep(2000);
    result.memory = { connections: tokens.length, empty, idle: await server.memory() };
    const c = await capacity(
      phase,
      bench.audience,
      settings.window,
      tokens.length * 500,
      settings.warmupMs,
      settings.measureMs,
    );
    result.capacity = c;
    log(
      `${variant.key}: capacity ${Math.round(c.rate)}/s (server cpu ${c.serverCpu.toFixed(2)}, ` +
        `clients ${c.clientCpu.toFixed(2)}), missing ${c.missing}, closed ${c.closed}`,
    );
    if (c.missing !== 0) errors.push(`capacity: ${c.missing} deliveries missing (negative: extra)`);
    if (c.closed !== 0) errors.push(`capacity: the server closed ${c.closed} connections`);
    for (const load of settings.loads) {
      const l = await latency(phase, bench.audience, c.rate * load, settings.latencyMs);
      result.latency = [...result.latency, l];
      log(
        `${variant.key}: ${load * 100}% → p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, ` +
          `max ${l.max.toFixed(1)} ms, missing ${l.missing}, closed ${l.closed}, ` +
          `server ${l.serverCpu.toFixed(2)}, clients ${l.clientCpu.toFixed(2)}`,
      );
      if (l.missing !== 0) errors.push(`latency ${load}: ${l.missing} deliveries missing`);
      if (l.closed !== 0) errors.push(`latency ${load}: the server closed ${l.closed} connections`);
    }
    await countTransactions(s, db);
    log(`${variant.key}: storm used ${s.transactions} database transactions`);
  } catch (error) {
    errors.push(String(error));
    log(`${variant.key}: ${String(error)}`);
  } finally {
    await server.stop();
    await pool.closeAll();
  }
  return result;
}

async function measureBig(
  bench: Run,
  variant: Variant,
): Promise<(MemoryResult & { storm: VariantRound['storm'] & object }) | string> {
  const { settings, pool, publisher } = bench;
  const server = await startServer(variant, { ...bench.context, cpu: '' }, settings.bigProcesses);
  try {
    const empty = await server.memory();
    const once = bench.tokens();
    const tokens = Array.from({ length: settings.bigClients }, (_, i) => once[i % once.length]!);
    log(`${variant.key}: ${tokens.length} connections over ${settings.bigProcesses} processes`);
    const shards = tokens.map((_, i) => bench.shards[i % once.length]!);
    const s = await storm(
      { pool, publisher, server },
      tokens,
      shards,
      undefined,
      settings.inFlight,
      settings.bigTimeoutMs,
    );
    if (!s.complete) return `${s.live} of ${tokens.length} connections live`;
    await sleep(2000);
    return { connections: tokens.length, empty, idle: await server.memory(), storm: s };
  } catch (error) {
    return String(error);
  } finally {
    await server.stop();
    await pool.closeAll();
  }
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  if (settings.help) {
    process.stdout.write(settings.help);
    return 0;
  }
  if (settings.render) {
    const input = JSON.parse(readFileSync(settings.render, 'utf8')) as ReportInput;
    writeFileSync(settings.out, renderReport({ ...input, startedAt: new Date(input.startedAt) }));
    log(`wrote ${relative(repo, settings.out)} from ${settings.render}`);
    return 0;
  }
  const startedAt = new Date();
  // The orchestrator and the clients share the client core; servers get the other one.
  const {
    python,
    versions: versionInfo,
    buildWarning,
  } = await prepareBench(repo, work, settings.clientCpu, log);

  const users = buildPopulation(settings.clients);
  const channel = `sidecast-bench-${randomBytes(4).toString('hex')}`;
  const redisUrl = 'redis://127.0.0.1:6379/1';
  const { maxAge, serverCpu: cpu } = settings;
  const site = { repo, work, python, users, redisUrl, channel, maxAge, cpu, log };
  const { secretKey, db, context } = await createBenchSite(site);
  const pool = ClientPool.start(
    join(work, 'dist', 'client-process.js'),
    settings.clientProcesses,
    settings.clientCpu,
  );
  const publisher = new Publisher(redisUrl, channel, db.modelIds, db.probeIds);
  const mint = createMinter(secretKey, settings.maxAge);
  const bench: Run = {
    settings,
    pool,
    publisher,
    db,
    context,
    tokens: () => db.rows.map(mint),
    audience: audienceSizes(users),
    shards: users.map((_, index) => probeShardOf(index)),
  };
  const stop = async () => {
    pool.stop();
    publisher.close();
    await db.drop().catch(() => undefined);
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));

  const variants = VARIANTS.filter((v) => settings.variants.includes(v.key));
  const rounds: Round[] = [];
  const meanShare = bench.audience.reduce((a, b) => a + b, 0) / MODEL_COUNT / users.length;
  const write = () => {
    const input: ReportInput = {
      command: settings.command,
      mode: settings.quick ? 'quick' : 'full',
      startedAt,
      elapsedSeconds: (Date.now() - startedAt.getTime()) / 1000,
      versions: versionInfo,
      settings: settings.describe(meanShare, bench.audience, users.length),
      loads: settings.loads,
      sizes: settings,
      rounds,
      notes: [
        ...(settings.quick
          ? [
              'Quick mode: sizes this small only check that everything runs; per-connection memory in particular is dominated by noise. Use the full run for figures.',
            ]
          : []),
        ...notes(rounds, buildWarning),
      ],
    };
    mkdirSync(dirname(settings.out), { recursive: true });
    writeFileSync(settings.out, renderReport(input));
    // The raw figures, to re-render the table later (--render) or look closer.
    writeFileSync(join(work, 'last-run.json'), JSON.stringify(input));
  };
  try {
    for (let r = 0; r < settings.rounds; r++) {
      const round: Round = {};
      rounds.push(round);
      // Interleaved, and rotated each round so no server always goes first.
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
      for (const variant of order) {
        log(`round ${r + 1}/${settings.rounds}: ${variant.label}`);
        round[variant.key] = await measureVariant(bench, variant);
        write();
      }
      if (settings.bigClients > 0) {
        for (const variant of order) {
          const big = await measureBig(bench, variant);
          const entry = round[variant.key]!;
          if (typeof big === 'string')
            round[variant.key] = {
              ...entry,
              errors: [...entry.errors, `${settings.bigClients} connections: ${big}`],
            };
          else round[variant.key] = { ...entry, big };
          log(`${variant.key}: ${typeof big === 'string' ? big : 'big memory measured'}`);
          write();
        }
      }
    }
  } finally {
    await stop();
  }
  write();
  log(`wrote ${relative(repo, settings.out)}`);
  return 0;
}

function notes(rounds: readonly Round[], buildWarning: string | undefined): string[] {
  const out: string[] = [];
  rounds.forEach((round, index) => {
    for (const [key, result] of Object.entries(round)) {
      for (const error of result?.errors ?? []) out.push(`Round ${index + 1}, ${key}: ${error}.`);
      const c = result?.capacity;
      if (c && c.clientCpu >= 0.9)
        out.push(
          `Round ${index + 1}, ${key}: capacity is client-bound (clients used ${Math.round(c.clientCpu * 100)}% of their core).`,
        );
      const s = result?.storm;
      if (s && s.listenDrops > 0)
        out.push(
          `Round ${index + 1}, ${key}: the kernel dropped ${s.listenDrops} connection attempts from a full accept queue during the storm (clients retried).`,
        );
    }
  });
  if (buildWarning)
    out.push(
      `The sidecast build reported type errors; the emitted JavaScript was used: ${buildWarning.split('\n')[0]}`,
    );
  return out;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
