/**
 * `node --import tsx bench/buses.ts [--quick]`: what each bus costs, measured in one run against
 * the Redis pub/sub bus as baseline, and what interest routing saves. Writes bench/BUSES.md.
 *
 * 1. Per-event cost: one reader process (bench/lib/bus-reader.ts: the bus driver as an instance
 *    runs it, counting instead of fanning out) on core 1; this process publishes N events of
 *    about 200 bytes through the same driver, 256 in flight, on core 0 with the brokers. Events/s
 *    from the first publish to the reader's last message; the reader's and the broker's CPU per
 *    event from /proc. Rounds alternate the buses (A B C … A B C …); the median is reported.
 * 2. Interest routing: 4 readers, two interested in content types 1-10 and two in 11-20 (users
 *    who see disjoint halves), N events spread evenly over 1-20. Messages and payload bytes each
 *    reader receives, on the buses that route (nats, redis-cluster) against the same buses told
 *    every content type, and against Redis pub/sub, which sends every reader everything.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBus, type BusOptions } from '../src/bus/create-bus.js';
import { OPTIONS } from '../src/config.js';
import { createRedisCluster, type RedisClusterHandle } from '../test/support/brokers.js';
import { spawnTracked, stopAllChildren } from '../test/support/children.js';
import { readFlags } from './lib/flags.js';
import { cpuSeconds, freePort, sleep, until } from './lib/proc.js';
import { renderScale } from './lib/scale-model.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: node --import tsx bench/buses.ts [OPTIONS]

Per-event cost of each bus and the effect of interest routing, in one run; writes bench/BUSES.md.

Options:
  --quick        5,000 events per run, 1 round (default 20,000 events, 3 rounds)
  --events N     events per run
  --rounds N     rounds of the per-event cost
  --out PATH     where to write the results (default bench/BUSES.md; the scale model goes to
                 SCALE.md beside it)
  --help
`;

type Kind = 'redis' | 'redis-streams' | 'nats' | 'nats-jetstream' | 'redis-cluster';
const KINDS: readonly Kind[] = [
  'redis',
  'redis-streams',
  'nats',
  'nats-jetstream',
  'redis-cluster',
];

interface Brokers {
  readonly redisUrl: string;
  readonly redisPid: number;
  readonly natsUrl: string;
  readonly natsPid: number;
  readonly cluster: RedisClusterHandle;
  readonly clusterPids: number[];
  stop(): Promise<void>;
}

async function startBrokers(): Promise<Brokers> {
  const folder = mkdtempSync(join(tmpdir(), 'sidecast-bench-buses-'));
  const redisPort = await freePort();
  const redis = spawnTracked(
    'taskset',
    ['-c', '0', 'redis-server', '--port', String(redisPort), '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore', detached: false },
  );
  const natsPort = await freePort();
  const nats = spawnTracked(
    'taskset',
    ['-c', '0', 'nats-server', '-a', '127.0.0.1', '-p', String(natsPort), '--js', '--sd', folder],
    { stdio: 'ignore', detached: false },
  );
  const cluster = await createRedisCluster(3);
  // The cluster's redis-server processes, by the ports they listen on.
  const clusterPids = cluster.nodes.map((node) => pidListening(node.port));
  for (const pid of clusterPids)
    spawnSync('taskset', ['-p', '-c', '0', String(pid)], { stdio: 'ignore' });
  await sleep(500);
  return {
    redisUrl: `redis://127.0.0.1:${redisPort}/0`,
    redisPid: redis.pid!,
    natsUrl: `nats://127.0.0.1:${natsPort}`,
    natsPid: nats.pid!,
    cluster,
    clusterPids,
    async stop() {
      await cluster.stop();
      await stopAllChildren();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** The pid of the process listening on a TCP port of 127.0.0.1. */
function pidListening(port: number): number {
  const out = spawnSyncText('sh', ['-c', `ss -ltnpH 'sport = :${port}'`]);
  const match = /pid=(\d+)/.exec(out);
  if (!match) throw new Error(`nothing listens on ${port}`);
  return Number(match[1]);
}

function spawnSyncText(command: string, args: string[]): string {
  return spawnSync(command, args, { encoding: 'utf8' }).stdout ?? '';
}

function busOptions(kind: Kind, brokers: Brokers, run: string): BusOptions {
  const defaults = Object.fromEntries(
    Object.entries(OPTIONS).map(([name, spec]) => [
      name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase()),
      spec.defaultValue,
    ]),
  ) as unknown as BusOptions;
  return {
    ...defaults,
    bus: kind,
    redis: brokers.redisUrl,
    channel: `bench-${run}`,
    stream: `bench-${run}`,
    controlChannel: `bench-${run}:control`,
    nats: brokers.natsUrl,
    natsSubjectPrefix: `bench-${run}`,
    natsStream: `BENCH-${run}`,
    redisCluster: brokers.cluster.nodes[0]!.url,
    historyMaxEntries: 100_000,
  };
}

function brokerPids(kind: Kind, brokers: Brokers): number[] {
  if (kind === 'redis' || kind === 'redis-streams') return [brokers.redisPid];
  if (kind === 'redis-cluster') return brokers.clusterPids;
  return [brokers.natsPid];
}

interface Counts {
  readonly messages: number;
  readonly bytes: number;
}

interface Reader {
  readonly child: ChildProcess;
  ask(what: 'counts' | 'reset'): Promise<Counts>;
  stop(): Promise<void>;
}

async function startReader(options: BusOptions, interest: readonly number[]): Promise<Reader> {
  const child = fork(
    join(repo, 'bench', 'lib', 'bus-reader.ts'),
    [JSON.stringify({ options, interest })],
    {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  await new Promise<void>((ready, failed) => {
    child.once('message', () => ready());
    child.once('exit', (code) => failed(new Error(`bus reader exited with ${code}`)));
  });
  spawnSync('taskset', ['-p', '-c', '1', String(child.pid)], { stdio: 'ignore' });
  return {
    child,
    ask: (what) =>
      new Promise((answer) => {
        child.once('message', (counts) => answer(counts as Counts));
        child.send(what);
      }),
    async stop() {
      const exited = new Promise((done) => child.once('exit', done));
      child.send('stop');
      await Promise.race([exited, sleep(3000)]);
      child.kill('SIGKILL');
    },
  };
}

const PAD = 'x'.repeat(120);
function payload(contentTypeId: number, n: number): string {
  return JSON.stringify({
    model: 'book',
    object: `Book ${n}`,
    message: PAD,
    content_type_id: contentTypeId,
  });
}

/** Publishes `count` events, `inFlight` at a time, content types cycling through `types`. */
async function publishAll(
  publish: (payload: string) => Promise<void>,
  count: number,
  types: readonly number[],
  inFlight = 256,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      await publish(payload(types[n % types.length]!, n));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

interface CostFigures {
  readonly eventsPerSecond: number;
  readonly readerMicros: number;
  readonly brokerMicros: number;
}

async function measureCost(
  kind: Kind,
  brokers: Brokers,
  events: number,
  run: string,
): Promise<CostFigures> {
  const options = busOptions(kind, brokers, run);
  const types = Array.from({ length: 20 }, (_, i) => i + 1);
  const reader = await startReader(options, types);
  const publisher = createBus(options);
  try {
    // Warm up: the subscriptions are in place once a round of events comes through.
    await until(
      async () => {
        await publishAll((p) => publisher.publish(p), 20, types, 1);
        return (await reader.ask('counts')).messages > 0;
      },
      10_000,
      200,
    );
    await sleep(300);
    await reader.ask('reset');
    const readerCpu = cpuSeconds(reader.child.pid!);
    const brokerCpu = brokerPids(kind, brokers).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const started = performance.now();
    await publishAll((p) => publisher.publish(p), events, types);
    const arrived = await until(
      async () => (await reader.ask('counts')).messages >= events,
      60_000,
      5,
    );
    const seconds = (performance.now() - started) / 1000;
    if (!arrived)
      throw new Error(
        `${kind}: the reader got ${(await reader.ask('counts')).messages} of ${events}`,
      );
    const readerUsed = cpuSeconds(reader.child.pid!) - readerCpu;
    const brokerUsed =
      brokerPids(kind, brokers).reduce((sum, pid) => sum + cpuSeconds(pid), 0) - brokerCpu;
    return {
      eventsPerSecond: events / seconds,
      readerMicros: (readerUsed / events) * 1e6,
      brokerMicros: (brokerUsed / events) * 1e6,
    };
  } finally {
    await reader.stop();
    await publisher.close();
  }
}

interface InterestFigures {
  readonly label: string;
  /** Per reader. */
  readonly messages: number[];
  readonly bytes: number[];
  /** The broker's CPU per message it delivered (all readers together), in µs. */
  readonly brokerMicrosPerDelivery: number;
  /** The broker's CPU over the run (s), and the messages it delivered in all. */
  readonly brokerSeconds: number;
  readonly delivered: number;
  /** The readers' CPU per message received, in µs. */
  readonly readerMicrosPerMessage: number;
}

async function measureInterest(
  label: string,
  kind: Kind,
  routed: boolean,
  brokers: Brokers,
  events: number,
  run: string,
): Promise<InterestFigures> {
  const options = busOptions(kind, brokers, run);
  const halves = [
    Array.from({ length: 10 }, (_, i) => i + 1),
    Array.from({ length: 10 }, (_, i) => i + 11),
  ];
  const all = [...halves[0]!, ...halves[1]!];
  const readers = await Promise.all(
    [0, 1, 2, 3].map((i) => startReader(options, routed ? halves[i % 2]! : all)),
  );
  const publisher = createBus(options);
  try {
    await until(
      async () => {
        await publishAll((p) => publisher.publish(p), 20, all, 1);
        const counts = await Promise.all(readers.map((reader) => reader.ask('counts')));
        return counts.every((count) => count.messages > 0);
      },
      10_000,
      200,
    );
    await sleep(300);
    await Promise.all(readers.map((reader) => reader.ask('reset')));
    const brokerCpu = () =>
      brokerPids(kind, brokers).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const readersCpu = () =>
      readers.reduce((sum, reader) => sum + cpuSeconds(reader.child.pid!), 0);
    const brokerBefore = brokerCpu();
    const readersBefore = readersCpu();
    await publishAll((p) => publisher.publish(p), events, all);
    const expected = routed ? events / 2 : events;
    await until(
      async () => {
        const counts = await Promise.all(readers.map((reader) => reader.ask('counts')));
        return counts.every((count) => count.messages >= expected);
      },
      60_000,
      20,
    );
    const brokerUsed = brokerCpu() - brokerBefore;
    const readersUsed = readersCpu() - readersBefore;
    await sleep(300);
    const counts = await Promise.all(readers.map((reader) => reader.ask('counts')));
    const delivered = counts.reduce((sum, c) => sum + c.messages, 0);
    return {
      label,
      messages: counts.map((c) => c.messages),
      bytes: counts.map((c) => c.bytes),
      brokerMicrosPerDelivery: (brokerUsed / delivered) * 1e6,
      brokerSeconds: brokerUsed,
      delivered,
      readerMicrosPerMessage: (readersUsed / delivered) * 1e6,
    };
  } finally {
    await Promise.all(readers.map((reader) => reader.stop()));
    await publisher.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function spread(values: readonly number[]): string {
  return values.length > 1
    ? `${Math.round(Math.min(...values))}-${Math.round(Math.max(...values))}`
    : '';
}

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2), ['quick', 'help', 'events', 'rounds', 'out']);
  if (flags.has('help')) {
    process.stdout.write(HELP);
    return;
  }
  const quick = flags.has('quick');
  const events = Number(flags.get('events') ?? (quick ? 5000 : 20_000));
  const rounds = Number(flags.get('rounds') ?? (quick ? 1 : 3));
  const out = resolve(flags.get('out') ?? join(repo, 'bench', 'BUSES.md'));
  const brokers = await startBrokers();
  const run = Math.random().toString(36).slice(2, 8);
  try {
    const cost = new Map<Kind, CostFigures[]>(KINDS.map((kind) => [kind, []]));
    for (let round = 0; round < rounds; round++) {
      for (const kind of KINDS) {
        const figures = await measureCost(kind, brokers, events, `${run}-${round}-${kind}`);
        cost.get(kind)!.push(figures);
        process.stderr.write(
          `round ${round + 1} ${kind}: ${Math.round(figures.eventsPerSecond)} events/s, reader ${figures.readerMicros.toFixed(1)} µs/event, broker ${figures.brokerMicros.toFixed(1)} µs/event\n`,
        );
      }
    }
    // Every variant once per round, in the same order; the CPU sums over the rounds: more
    // ticks of CPU accounting per figure.
    const variants: readonly [string, Kind, boolean][] = [
      ['redis (pub/sub, every event to every instance)', 'redis', false],
      ['nats, told every content type (broadcast)', 'nats', false],
      ['nats, routed by interest', 'nats', true],
      ['redis-cluster, told every content type (broadcast)', 'redis-cluster', false],
      ['redis-cluster, routed by interest', 'redis-cluster', true],
    ];
    const interestRounds: InterestFigures[][] = variants.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, [label, kind, routed]] of variants.entries()) {
        interestRounds[i]!.push(
          await measureInterest(label, kind, routed, brokers, events, `${run}-i${round}-${i}`),
        );
      }
    }
    const interest = interestRounds.map((figures): InterestFigures => {
      const brokerSeconds = figures.reduce((sum, f) => sum + f.brokerSeconds, 0);
      const delivered = figures.reduce((sum, f) => sum + f.delivered, 0);
      return {
        ...figures.at(-1)!,
        brokerSeconds,
        delivered,
        brokerMicrosPerDelivery: (brokerSeconds / delivered) * 1e6,
        readerMicrosPerMessage: median(figures.map((f) => f.readerMicrosPerMessage)),
      };
    });
    for (const figures of interest)
      process.stderr.write(`${figures.label}: ${figures.messages.join(' ')} messages\n`);
    writeFileSync(out, report(cost, interest, { events, rounds, quick }));

    process.stderr.write(`wrote ${out}\n`);
    const reader = (kind: Kind) => median(cost.get(kind)!.map((f) => f.readerMicros));
    const [redisBroadcast, , natsRouted, clusterBroadcast, clusterRouted] = interest as [
      InterestFigures,
      InterestFigures,
      InterestFigures,
      InterestFigures,
      InterestFigures,
    ];
    const natsBroadcast = interest[1]!;
    const scaleOut = join(dirname(out), out.endsWith('BUSES.md') ? 'SCALE.md' : 'SCALE-other.md');
    writeFileSync(
      scaleOut,
      renderScale(
        {
          // With four subscribers each: the CPU over the deliveries, a quarter of each event's
          // intake included (see the report).
          brokerMicros: {
            redis: redisBroadcast.brokerMicrosPerDelivery,
            redisCluster: clusterBroadcast.brokerMicrosPerDelivery,
            nats: natsBroadcast.brokerMicrosPerDelivery,
          },
          natsIntakeMicros: median(cost.get('nats')!.map((f) => f.brokerMicros)),
          readerMicros: {
            redis: reader('redis'),
            redisCluster: reader('redis-cluster'),
            nats: reader('nats'),
          },
          routedShare: {
            nats: median(natsRouted.bytes) / median(natsBroadcast.bytes),
            redisCluster: median(clusterRouted.bytes) / median(clusterBroadcast.bytes),
          },
        },
        `bench/${out.split('/').pop()}`,
      ),
    );
    process.stderr.write(`wrote ${scaleOut}\n`);
  } finally {
    await brokers.stop();
  }
}

function report(
  cost: Map<Kind, CostFigures[]>,
  interest: readonly InterestFigures[],
  run: { events: number; rounds: number; quick: boolean },
): string {
  const base = cost.get('redis')!;
  const baseRate = median(base.map((f) => f.eventsPerSecond));
  const baseReader = median(base.map((f) => f.readerMicros));
  const lines = [
    '# Buses: per-event cost and interest routing',
    '',
    `Written by \`node --import tsx bench/buses.ts${run.quick ? ' --quick' : ''}\` (${run.events.toLocaleString('en')} events per run, ${run.rounds} round${run.rounds > 1 ? 's' : ''}, buses alternated each round; medians, spread in brackets). Brokers on this machine, on loopback: one redis-server, one nats-server with JetStream (file store), and a Redis Cluster of three masters with one replica each. The reader (\`bench/lib/bus-reader.ts\`: the bus driver as an instance runs it, counting instead of fanning out) runs on core 1; the publisher (this script, through the same driver, 256 publishes in flight) and the brokers on core 0. Ratios are against the Redis pub/sub bus of the same run.`,
    '',
    '## Per-event cost, one reader',
    '',
    '| bus | events/s publish → reader | ratio | reader CPU µs/event | ratio | broker CPU µs/event |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const [kind, figures] of cost) {
    const rate = median(figures.map((f) => f.eventsPerSecond));
    const reader = median(figures.map((f) => f.readerMicros));
    const broker = median(figures.map((f) => f.brokerMicros));
    const rateSpread = spread(figures.map((f) => f.eventsPerSecond));
    lines.push(
      `| ${kind} | ${Math.round(rate).toLocaleString('en')}${rateSpread ? ` (${rateSpread})` : ''} | ${(rate / baseRate).toFixed(2)} | ${reader.toFixed(1)} | ${(reader / baseReader).toFixed(2)} | ${broker.toFixed(1)} |`,
    );
  }
  lines.push(
    '',
    'Events/s is bounded by whichever of the publisher, the broker and the reader saturates first on this machine; the CPU columns are what one event costs each, which is what the scale model (bench/SCALE.md) uses. The redis-cluster broker figure is the sum over its six processes (masters and replicas: a replica receives each sharded message too).',
    '',
    '## Interest routing, four instances seeing disjoint halves of 20 content types',
    '',
    `${run.events.toLocaleString('en')} events spread evenly over content types 1-20, each variant once per round; instances 1 and 3 are interested in 1-10, instances 2 and 4 in 11-20. Messages and payload bytes each instance received from the broker in one round (protocol framing not counted); broker CPU summed over the rounds, reader CPU the median round.`,
    '',
    '| bus | messages per instance | payload bytes per instance | against broadcast | broker CPU µs per delivered message | reader CPU µs per message |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  const broadcast = median(interest[0]!.messages);
  for (const figures of interest) {
    lines.push(
      `| ${figures.label} | ${figures.messages.map((m) => m.toLocaleString('en')).join(' / ')} | ${figures.bytes.map((b) => b.toLocaleString('en')).join(' / ')} | ${(median(figures.messages) / broadcast).toFixed(2)} | ${figures.brokerMicrosPerDelivery.toFixed(1)} | ${figures.readerMicrosPerMessage.toFixed(1)} |`,
    );
  }
  lines.push(
    '',
    "The broker's CPU per delivered message includes its share of each event's intake (a quarter in the broadcast runs, a half in the routed ones), which is why routing raises it: with four subscribers, intake is a large part of the work. Splitting intake from delivery by solving the two runs for both was tried and gave values within the noise of CPU accounting at this size (10 ms ticks, tens of ticks per run), negative in one run, so the scale model uses the broadcast figure, an upper bound for a delivery.",
  );
  lines.push('');
  return lines.join('\n');
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    process.stderr.write(
      `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    await stopAllChildren();
    process.exit(1);
  },
);
