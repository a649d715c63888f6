/**
 * `node --import tsx bench/recovery.ts [--quick]`: protocol v1 recovery on the redis-streams bus,
 * measured in one run beside the guide protocol: delivery under repeated connection drops,
 * a recovery storm (with and without `since`), and fan-out on the streams bus against pub/sub.
 * Writes bench/RECOVERY.md. See bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerTarget } from './load/protocol.js';
import { ClientPool } from './lib/clients.js';
import type { UserRow } from './lib/database.js';
import { capacity, now } from './lib/phases.js';
import { audienceSizes, buildPopulation, probeShardCount, probeShardOf } from './lib/population.js';
import { rssBytes, sleep, treeCpuSeconds } from './lib/proc.js';
import { Publisher } from './lib/publisher.js';
import {
  renderRecoveryReport,
  type ChurnFigures,
  type FanoutFigures,
  type RecoveryInput,
  type StormFigures,
} from './lib/recovery-report.js';
import { callsBetween, startRedis } from './lib/redis-server.js';
import { startServer, VARIANTS, type RunningServer, type ServerContext } from './lib/servers.js';
import { createBenchSite, prepareBench } from './lib/setup.js';
import { createMinter } from './lib/tokens.js';
import { positiveIntegerFlag, readFlags } from './lib/flags.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(repo, 'bench', '.work');

const HELP = `Usage: node --import tsx bench/recovery.ts [OPTIONS]

Protocol v1 recovery on the redis-streams bus against the guide protocol, in one run; writes
bench/RECOVERY.md.

Options:
  --quick              short run: 10 s of drops, 2,000-client storm and fan-out
  --clients N          clients of the recovery storm and of the fan-out (default 10000; quick 2000)
  --churn-clients N    dropping clients per server in the drops test (default 200; quick 100)
  --duration S         seconds of events during the drops test (default 30; quick 10)
  --rate N             events per second during the drops test (default 50)
  --rounds N           fan-out rounds, bus order alternated (default 4; quick 1)
  --out PATH           where to write the results (default bench/RECOVERY.md)
  --help
`;

interface Options {
  readonly quick: boolean;
  readonly clients: number;
  readonly churnClients: number;
  readonly durationS: number;
  readonly rate: number;
  readonly rounds: number;
  readonly out: string;
  readonly command: string;
}

function parseOptions(argv: readonly string[]): Options | undefined {
  const flags = readFlags(argv, [
    'quick',
    'help',
    'clients',
    'churn-clients',
    'duration',
    'rate',
    'rounds',
    'out',
  ]);
  if (flags.has('help')) return undefined;
  const quick = flags.has('quick');
  const number = (name: string, fallback: number) => positiveIntegerFlag(flags, name, fallback);
  return {
    quick,
    clients: number('clients', quick ? 2000 : 10_000),
    churnClients: number('churn-clients', quick ? 100 : 200),
    durationS: number('duration', quick ? 10 : 30),
    rate: number('rate', 50),
    rounds: number('rounds', quick ? 1 : 4),
    out: resolve(flags.get('out') ?? join(repo, 'bench', 'RECOVERY.md')),
    command: `node --import tsx bench/recovery.ts${argv.length ? ` ${argv.join(' ')}` : ''}`,
  };
}

function log(message: string): void {
  process.stderr.write(`[recovery ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const SIDECAST = VARIANTS.find((v) => v.key === 'sidecast')!;
const PYTHON = VARIANTS.find((v) => v.key === 'python')!;
const DROP_EVERY_MS = 2000;
const RECONNECT_DELAY_MS = 250;
const STORM_MISSED = 100;
const IN_FLIGHT = 500;

function v1Targets(server: RunningServer): ServerTarget[] {
  return server.targets.map((target) => ({ ...target, protocol: 'v1' }));
}

function serverRss(server: RunningServer): number {
  return server.pids().reduce((total, pid) => total + rssBytes(pid), 0);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    process.stdout.write(HELP);
    return 0;
  }
  const startedAt = new Date();
  const { python, versions: versionInfo, buildWarning } = await prepareBench(repo, work, '1', log);
  const redis = await startRedis();
  log(`private redis-server ${redis.version} at ${redis.url}`);

  const userCount = Math.max(options.clients, options.churnClients);
  const users = buildPopulation(userCount);
  const suffix = randomBytes(4).toString('hex');
  const channel = `sidecast-bench-${suffix}`;
  const maxAge = 300;
  const site = { repo, work, python, users, redisUrl: redis.url, channel, maxAge, cpu: '0', log };
  const { secretKey, db, context: base } = await createBenchSite(site);
  const shards = probeShardCount(options.clients);
  const stormEntries = STORM_MISSED * shards;
  const stream = {
    name: `sidecast-bench-${suffix}`,
    historyMaxEntries: Math.max(10_000, 2 * stormEntries),
    recoverMax: Math.max(1000, stormEntries + 100),
  };
  const streams: ServerContext = { ...base, stream };
  const pool = ClientPool.start(join(work, 'dist', 'client-process.js'), 2, '1');
  const publisher = new Publisher(redis.url, channel, db.modelIds, db.probeIds, {
    name: stream.name,
    maxLen: stream.historyMaxEntries,
  });
  const mint = createMinter(secretKey, maxAge);
  const notes: string[] = [];
  const input: {
    -readonly [K in keyof RecoveryInput]: RecoveryInput[K];
  } = {
    command: options.command,
    mode: options.quick ? 'quick' : 'full',
    startedAt: startedAt.toISOString(),
    elapsedSeconds: 0,
    versions: { ...versionInfo, 'redis-server': redis.version },
    settings: {
      'drops test': `${options.churnClients} clients per server (users 1–${options.churnClients}, the same users on each), each dropping its TCP connection about every ${DROP_EVERY_MS / 1000} s (±25%, first drop at a random point) and reconnecting ${RECONNECT_DELAY_MS} ms later with the same token; ${options.rate} events/s for ${options.durationS} s, each event to about a third of the users; the three servers run at the same time on the same events (PUBLISH and XADD of each)`,
      storm: `${options.clients.toLocaleString('en-US')} v1 clients connect and are welcomed, then all close; events are published; then all reconnect at once (at most ${IN_FLIGHT} upgrades in flight, the rest as those finish), with since (the last offset each received) or without; a fresh server for each storm. "Each missed ${STORM_MISSED}": ${STORM_MISSED} events per probe shard (${stormEntries.toLocaleString('en-US')} stream entries; each client may see ${STORM_MISSED} of them, the 1% superusers all of them). "${STORM_MISSED} missed in all": ${STORM_MISSED} events of the bench models, each client may see its share (about a third). "Without since": again ${STORM_MISSED} events per probe shard, no since sent`,
      'fan-out': `${options.clients.toLocaleString('en-US')} v1 clients on one sidecast process, pub/sub bus against redis-streams bus, closed loop as in bench/run.ts (100,000 deliveries outstanding at least, ${options.quick ? '500 ms warm-up, 1500 ms' : '1 s warm-up, 3 s'} measured), ${options.rounds} round(s), bus order alternated`,
      'streams bus': `--stream (random name) --history-max-entries ${stream.historyMaxEntries} --recover-max ${stream.recoverMax}; the publisher adds with XADD MAXLEN ~ ${stream.historyMaxEntries}`,
      redis: `a private redis-server started for the run (no persistence), unpinned; commands counted with INFO commandstats (INFO itself left out)`,
      pinning: 'servers on CPU 0, 2 client processes and the orchestrator on CPU 1',
      tokens: `django-sesame, SESAME_MAX_AGE=${maxAge}, minted once per phase (reused on reconnect)`,
    },
    notes,
  };
  const write = () => {
    input.elapsedSeconds = (Date.now() - startedAt.getTime()) / 1000;
    mkdirSync(dirname(options.out), { recursive: true });
    writeFileSync(options.out, renderRecoveryReport(input));
    writeFileSync(join(work, 'recovery-last-run.json'), JSON.stringify(input));
  };
  try {
    input.churn = await churnPhase(options, base, streams, pool, publisher, users, db.rows, mint);
    write();
    const storms: StormFigures[] = [];
    input.storms = storms;
    for (const kind of ['each', 'shared', 'none'] as const) {
      const figures = await stormPhase(
        options,
        streams,
        pool,
        publisher,
        db.rows,
        mint,
        kind,
        () => redis.commandCalls(),
        users,
      );
      storms.push(figures);
      const redisTotal = figures.redisCommands.reduce((a, [, n]) => a + n, 0);
      log(
        `storm ${kind}: ${figures.done}/${figures.clients} done in ${figures.seconds.toFixed(2)} s, ` +
          `recovered ${figures.recovered}, replayed ${figures.replayed}, redis ${redisTotal} commands, ` +
          `peak rss ${(figures.peakRss / 2 ** 20).toFixed(0)} MiB`,
      );
      write();
    }
    const fanout: FanoutFigures[] = [];
    input.fanout = fanout;
    const audience = audienceSizes(users.slice(0, options.clients));
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? ['pubsub', 'streams'] : ['streams', 'pubsub'];
      for (const bus of order as ('pubsub' | 'streams')[]) {
        const figures = await fanoutPhase(
          options,
          bus === 'streams' ? streams : base,
          bus,
          round,
          pool,
          publisher,
          db.rows,
          mint,
          audience,
        );
        fanout.push(figures);
        log(
          `fan-out ${bus} round ${round + 1}: ${Math.round(figures.rate)}/s, server cpu ${figures.serverCpu.toFixed(2)}, clients ${figures.clientCpu.toFixed(2)}, missing ${figures.missing}`,
        );
        write();
      }
    }
  } catch (error) {
    notes.push(`The run stopped early: ${String(error)}`);
    log(String(error));
  } finally {
    pool.stop();
    publisher.close();
    await db.drop().catch(() => undefined);
    await redis.stop();
  }
  if (buildWarning)
    notes.push('The sidecast build reported type errors; the emitted JavaScript ran.');
  write();
  log(`wrote ${relative(repo, options.out)} in ${Math.round(input.elapsedSeconds)} s`);
  return 0;
}

async function churnPhase(
  options: Options,
  base: ServerContext,
  streams: ServerContext,
  pool: ClientPool,
  publisher: Publisher,
  users: ReturnType<typeof buildPopulation>,
  rows: readonly UserRow[],
  mint: ReturnType<typeof createMinter>,
): Promise<ChurnFigures[]> {
  const variants = [
    { label: 'guide protocol, sidecast on Redis pub/sub', context: base, variant: SIDECAST },
    { label: "guide protocol, the guide's Python server", context: base, variant: PYTHON },
    {
      label: 'protocol v1, sidecast on the redis-streams bus',
      context: streams,
      variant: SIDECAST,
    },
  ];
  const servers: RunningServer[] = [];
  try {
    for (const v of variants) servers.push(await startServer(v.variant, v.context, 1));
    const tokens = rows.slice(0, options.churnClients).map(mint);
    const specs = servers.flatMap((server, group) =>
      tokens.map((token, user) => ({
        group,
        user,
        token,
        target: group === 2 ? v1Targets(server)[0]! : server.targets[0]!,
      })),
    );
    log(`drops: ${specs.length} clients over ${servers.length} servers`);
    await pool.churnStart(specs, DROP_EVERY_MS, RECONNECT_DELAY_MS);
    await sleep(3000);
    const cpuBefore = servers.map((server) => treeCpuSeconds(server.pids()));
    const models = new Map<number, number>();
    const first = publisher.seq + 1;
    const total = options.rate * options.durationS;
    const started = now();
    let sent = 0;
    while (sent < total) {
      const dueAt = (n: number) => started + (n * 1e6) / options.rate;
      while (sent < total && dueAt(sent) <= now()) {
        const model = publisher.event(dueAt(sent));
        models.set(publisher.seq, model);
        sent++;
      }
      await sleep(5);
    }
    await publisher.flush();
    const last = publisher.seq;
    const seconds = (now() - started) / 1e6;
    const cpu = servers.map(
      (server, i) => (treeCpuSeconds(server.pids()) - cpuBefore[i]!) / seconds,
    );
    const ready = await pool.churnStop(20_000);
    log(
      `drops: events ${first}–${last} published in ${seconds.toFixed(1)} s; ${ready}/${specs.length} connected again`,
    );
    await sleep(3000);
    const report = await pool.churnReport();
    return variants.map((v, group) => {
      let expected = 0;
      let delivered = 0;
      let unexpected = 0;
      let duplicates = 0;
      let connections = 0;
      let unrecovered = 0;
      let worst = 1;
      for (const result of report.filter((r) => r.group === group)) {
        const visible = users[result.user]!.visible;
        let mine = 0;
        for (const [seq, model] of models) if (visible & (1 << model) && seq >= first) mine++;
        let got = 0;
        for (const seq of result.seqs) {
          const model = models.get(seq);
          if (model === undefined) continue; // published before the measured window
          if (visible & (1 << model)) got++;
          else unexpected++;
        }
        expected += mine;
        delivered += got;
        duplicates += result.duplicates;
        connections += result.connections;
        unrecovered += result.unrecovered;
        if (mine > 0) worst = Math.min(worst, got / mine);
      }
      return {
        label: v.label,
        clients: report.filter((r) => r.group === group).length,
        events: models.size,
        expected,
        delivered,
        unexpected,
        duplicates,
        connections,
        unrecovered,
        worstClient: worst,
        serverCpu: cpu[group]!,
      };
    });
  } finally {
    for (const server of servers) await server.stop();
    await pool.closeAll();
  }
}

/**
 * 'each': 100 events per probe shard, so each client may see 100 of them (superusers all);
 * 'shared': 100 events of the bench models, each client may see its share (about a third);
 * 'none': as 'each', but the clients reconnect without since.
 */
type StormKind = 'each' | 'shared' | 'none';

async function stormPhase(
  options: Options,
  streams: ServerContext,
  pool: ClientPool,
  publisher: Publisher,
  rows: readonly UserRow[],
  mint: ReturnType<typeof createMinter>,
  kind: StormKind,
  redisCalls: () => Promise<Map<string, number>>,
  users: ReturnType<typeof buildPopulation>,
): Promise<StormFigures> {
  const n = options.clients;
  const since = kind !== 'none';
  const server = await startServer(SIDECAST, streams, 1);
  try {
    const tokens = rows.slice(0, n).map(mint);
    const shardOf = tokens.map((_, i) => probeShardOf(i));
    const shardCount = probeShardCount(n);
    await pool.reset();
    log(`storm ${kind}: connecting ${n} v1 clients`);
    await pool.connect(v1Targets(server), tokens, shardOf, shardCount, IN_FLIGHT, 120_000);
    await waitFor(pool, n, 60_000);
    await pool.closeAll();
    await sleep(1000);
    const mine = users.slice(0, n);
    let entries = 0;
    let replayDue = 0;
    if (kind === 'shared') {
      for (let i = 0; i < STORM_MISSED; i++) {
        const model = publisher.event(now());
        entries++;
        for (const user of mine) if (user.visible & (1 << model)) replayDue++;
      }
    } else {
      let probe = 0;
      for (let r = 0; r < STORM_MISSED; r++)
        for (let shard = 0; shard < shardCount; shard++) publisher.probe(shard, ++probe);
      entries = probe;
      // Each user may see its own shard's probes; superusers see every shard's.
      if (since) for (const user of mine) replayDue += user.superuser ? entries : STORM_MISSED;
    }
    await publisher.flush();
    await sleep(1500);
    const idleRss = serverRss(server);
    await pool.reset();
    const before = await redisCalls();
    const cpuBefore = treeCpuSeconds(server.pids());
    const clientCpuBefore = (await pool.stats()).cpuSeconds;
    let peakRss = idleRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, serverRss(server))), 20);
    const started = now();
    const reconnecting = pool.reconnect(since, IN_FLIGHT, 120_000);
    const stats = await waitFor(pool, n, 120_000);
    const connected = await reconnecting;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, serverRss(server));
    const after = await redisCalls();
    return {
      kind,
      since,
      clients: n,
      missedEach: STORM_MISSED,
      entries,
      seconds: (stats.lastDoneAt - started) / 1e6,
      done: stats.done,
      welcomed: stats.welcomed,
      recovered: stats.recovered,
      replayed: stats.replayed,
      replayDue,
      failed: connected.failed,
      redisCommands: callsBetween(before, after),
      idleRss,
      peakRss,
      serverCpu: treeCpuSeconds(server.pids()) - cpuBefore,
      clientCpu: stats.cpuSeconds - clientCpuBefore,
    };
  } finally {
    await server.stop();
    await pool.closeAll();
  }
}

async function waitFor(pool: ClientPool, count: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let stats = await pool.stats();
  while (stats.done < count && Date.now() < deadline) {
    await sleep(25);
    stats = await pool.stats();
  }
  if (stats.done < count)
    throw new Error(
      `${stats.done} of ${count} v1 clients welcomed (closes ${JSON.stringify(stats.closes)})`,
    );
  return stats;
}

async function fanoutPhase(
  options: Options,
  context: ServerContext,
  bus: 'pubsub' | 'streams',
  round: number,
  pool: ClientPool,
  publisher: Publisher,
  rows: readonly UserRow[],
  mint: ReturnType<typeof createMinter>,
  audience: readonly number[],
): Promise<FanoutFigures> {
  const n = options.clients;
  const server = await startServer(SIDECAST, context, 1);
  try {
    const tokens = rows.slice(0, n).map(mint);
    await pool.reset();
    await pool.connect(
      v1Targets(server),
      tokens,
      tokens.map((_, i) => probeShardOf(i)),
      probeShardCount(n),
      IN_FLIGHT,
      120_000,
    );
    await waitFor(pool, n, 60_000);
    await sleep(1000);
    const c = await capacity(
      { pool, publisher, server },
      audience,
      100_000,
      n * 500,
      options.quick ? 500 : 1000,
      options.quick ? 1500 : 3000,
    );
    return { bus, round, clients: n, ...c };
  } finally {
    await server.stop();
    await pool.closeAll();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
