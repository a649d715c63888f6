/**
 * `node --import tsx bench/storm.ts [--quick]`: the reconnect storm after a deploy, with many
 * connections per user (tabs): sidecast with per-user snapshots (the default
 * --permissions-refresh 60) against the same server without them (--permissions-refresh 0, each
 * connection reading its user and permissions, as before live permissions), in alternating
 * rounds on the same database, users and tokens. Writes bench/STORM.md. See bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientPool } from './lib/clients.js';
import { positiveIntegerFlag, readFlags } from './lib/flags.js';
import { countTransactions, storm, type StormResult } from './lib/phases.js';
import { buildPopulation, probeShardOf } from './lib/population.js';
import { Publisher } from './lib/publisher.js';
import { startRedis } from './lib/redis-server.js';
import { startServer, VARIANTS } from './lib/servers.js';
import { createBenchSite, prepareBench } from './lib/setup.js';
import { createMinter } from './lib/tokens.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(repo, 'bench', '.work');

const HELP = `Usage: node --import tsx bench/storm.ts [OPTIONS]

The reconnect storm of many clients per user, with and without per-user snapshots; writes
bench/STORM.md.

Options:
  --quick            short run: 2,000 clients from 200 users, 1 round
  --clients N        clients of each storm (default 10000; quick 2000)
  --per-user N       connections per user (default 10)
  --rounds N         rounds, each measuring both servers, order alternated (default 3; quick 1)
  --out PATH         where to write the results (default bench/STORM.md)
  --help
`;

const SIDECAST = VARIANTS.find((variant) => variant.key === 'sidecast')!;
const IN_FLIGHT = 500;
const TIMEOUT_MS = 120_000;

const SERVERS = [
  {
    key: 'before',
    label: 'without snapshots (--permissions-refresh 0)',
    args: ['--permissions-refresh=0'],
  },
  { key: 'after', label: 'with snapshots (--permissions-refresh 60, the default)', args: [] },
] as const;

type ServerKey = (typeof SERVERS)[number]['key'];

interface Measured {
  readonly seconds: number;
  readonly transactions: number;
  readonly serverCpu: number;
  readonly complete: boolean;
}

function log(message: string): void {
  process.stderr.write(`[storm ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function parseOptions(argv: readonly string[]) {
  const flags = readFlags(argv, ['quick', 'help', 'clients', 'per-user', 'rounds', 'out']);
  if (flags.has('help')) return undefined;
  const quick = flags.has('quick');
  const number = (name: string, fallback: number) => positiveIntegerFlag(flags, name, fallback);
  const clients = number('clients', quick ? 2000 : 10_000);
  const perUser = number('per-user', 10);
  return {
    quick,
    clients,
    perUser,
    users: Math.ceil(clients / perUser),
    rounds: number('rounds', quick ? 1 : 3),
    out: resolve(flags.get('out') ?? join(repo, 'bench', 'STORM.md')),
    command: `node --import tsx bench/storm.ts${argv.length ? ` ${argv.join(' ')}` : ''}`,
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    process.stdout.write(HELP);
    return 0;
  }
  const startedAt = new Date();
  const { python, versions: versionInfo } = await prepareBench(repo, work, '1', log);
  const redis = await startRedis();
  const users = buildPopulation(options.users);
  const channel = `sidecast-storm-${randomBytes(4).toString('hex')}`;
  const maxAge = 300;
  const site = { repo, work, python, users, redisUrl: redis.url, channel, maxAge, cpu: '0', log };
  const { secretKey, db, context: base } = await createBenchSite(site);
  const pool = ClientPool.start(join(work, 'dist', 'client-process.js'), 2, '1');
  const publisher = new Publisher(redis.url, channel, db.modelIds, db.probeIds);
  const mint = createMinter(secretKey, maxAge);
  // Connection i belongs to user i mod users: every user's tabs arrive spread through the storm.
  const owners = Array.from({ length: options.clients }, (_, i) => i % users.length);
  const shards = owners.map(probeShardOf);
  const results: Record<ServerKey, Measured[]> = { before: [], after: [] };
  try {
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse();
      for (const server of order) {
        const running = await startServer(SIDECAST, { ...base, sidecastArgs: server.args }, 1);
        try {
          // One token per connection, as each tab of a user asks for its own.
          const tokens = owners.map((owner) => mint(db.rows[owner]!));
          log(`round ${round + 1}, ${server.key}: storm of ${tokens.length} clients`);
          const s: StormResult = await storm(
            { pool, publisher, server: running },
            tokens,
            shards,
            db,
            IN_FLIGHT,
            TIMEOUT_MS,
          );
          await countTransactions(s, db);
          log(
            `round ${round + 1}, ${server.key}: ${s.live}/${tokens.length} live in ` +
              `${s.seconds.toFixed(2)} s, ${s.transactions} transactions, server cpu ${s.serverCpu.toFixed(1)} s`,
          );
          results[server.key].push({
            seconds: s.seconds,
            transactions: s.transactions,
            serverCpu: s.serverCpu,
            complete: s.complete,
          });
        } finally {
          await running.stop();
          await pool.closeAll();
        }
      }
    }
  } finally {
    await pool.stop();
    publisher.close();
    await db.drop();
    await redis.stop();
  }
  const report = render(options, results, {
    startedAt: startedAt.toISOString(),
    elapsedSeconds: (Date.now() - startedAt.getTime()) / 1000,
    versions: { ...versionInfo, 'redis-server': redis.version },
  });
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, report);
  log(`wrote ${relative(repo, options.out)}`);
  return Object.values(results)
    .flat()
    .every((m) => m.complete)
    ? 0
    : 1;
}

function render(
  options: NonNullable<ReturnType<typeof parseOptions>>,
  results: Record<ServerKey, Measured[]>,
  run: { startedAt: string; elapsedSeconds: number; versions: Record<string, string> },
): string {
  const summary = (key: ServerKey) => {
    const rounds = results[key];
    return {
      seconds: median(rounds.map((m) => m.seconds)),
      perClient: median(rounds.map((m) => m.transactions / options.clients)),
      cpu: median(rounds.map((m) => m.serverCpu)),
      complete: rounds.every((m) => m.complete),
    };
  };
  const before = summary('before');
  const after = summary('after');
  const row = (label: string, s: ReturnType<typeof summary>, ratio: string) =>
    `| ${label} | ${s.seconds.toFixed(2)} s | ${s.perClient.toFixed(2)} | ${s.cpu.toFixed(1)} s | ${s.complete ? 'yes' : 'no'} | ${ratio} |`;
  const lines = [
    '# Reconnect storm with many connections per user',
    '',
    `\`${options.command}\`, ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(run.elapsedSeconds)} s. ` +
      `${options.clients.toLocaleString('en-US')} clients from ${options.users.toLocaleString('en-US')} users (${options.perUser} each, ` +
      `the tabs of a user spread through the storm), all connecting at once (at most ${IN_FLIGHT} upgrades in flight), ` +
      `one sidecast process on CPU 0 (pub/sub bus, PostgreSQL), clients on CPU 1; a fresh server for each storm; ` +
      `${options.rounds} round(s), order alternated; medians.`,
    '',
    '| server | storm time | database transactions per client | server CPU | all live | vs without |',
    '| ------ | ---------- | -------------------------------- | ---------- | -------- | ---------- |',
    row(SERVERS[0].label, before, '×1.00'),
    row(
      SERVERS[1].label,
      after,
      `×${(after.perClient / before.perClient).toFixed(2)} transactions, ×${(after.seconds / before.seconds).toFixed(2)} time`,
    ),
    '',
    'Storm time: from the first connection attempt until the last client received its first probe ' +
      "event (bench/lib/phases.ts). Transactions: PostgreSQL `xact_commit + xact_rollback` of the run's " +
      'database over the storm, read once its statistics are published. Without snapshots each connection ' +
      "reads its user and then its permissions (two transactions); with them a user's first connection " +
      'does, and the others reuse the snapshot (overlapping first reads of one user are one).',
    '',
    'Each round:',
    '',
    '| round | server | storm time | transactions | server CPU |',
    '| ----- | ------ | ---------- | ------------ | ---------- |',
    ...SERVERS.flatMap((server) =>
      results[server.key].map(
        (m, i) =>
          `| ${i + 1} | ${server.key} | ${m.seconds.toFixed(2)} s | ${m.transactions} | ${m.serverCpu.toFixed(1)} s |`,
      ),
    ),
    '',
    `Versions: ${Object.entries(run.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}.`,
    '',
  ];
  return lines.join('\n');
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(String(error instanceof Error ? (error.stack ?? error.message) : error));
    process.exit(1);
  },
);
