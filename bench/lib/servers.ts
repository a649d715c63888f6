/**
 * The four servers under test and how each is started: pinned to the server core with taskset,
 * pointed at the run's database, Redis channel and a free port, and ready once every process
 * has subscribed to the channel and accepts connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { ServerTarget } from '../load/protocol.js';
import type { Protocol } from '../load/ws-client.js';
import { freePort, processTree, rssBytes, sleep, until } from './proc.js';

export type VariantKey = 'naive' | 'sidecast' | 'python' | 'socketio';

export interface Variant {
  readonly key: VariantKey;
  readonly label: string;
  readonly protocol: Protocol;
  readonly runtime: 'node' | 'python';
}

export const VARIANTS: readonly Variant[] = [
  { key: 'naive', label: 'naive ws loop', protocol: 'ws', runtime: 'node' },
  { key: 'sidecast', label: 'sidecast', protocol: 'ws', runtime: 'node' },
  { key: 'python', label: 'guide (Python)', protocol: 'ws', runtime: 'python' },
  { key: 'socketio', label: 'Socket.IO + Redis adapter', protocol: 'socketio', runtime: 'node' },
];

export interface ServerContext {
  readonly repo: string;
  readonly work: string;
  readonly python: string;
  readonly databaseUrl: string;
  readonly databaseName: string;
  readonly redisUrl: string;
  readonly channel: string;
  readonly secretKey: string;
  readonly maxAge: number;
  /** taskset CPU list for servers, e.g. "0"; "" leaves them unpinned. */
  readonly cpu: string;
  /** sidecast only: more `serve` options, e.g. `--permissions-refresh=0`. */
  readonly sidecastArgs?: readonly string[];
  /** sidecast only: the redis-streams bus on this stream instead of pub/sub on the channel. */
  readonly stream?: {
    readonly name: string;
    readonly historyMaxEntries: number;
    readonly recoverMax: number;
  };
}

export interface MemoryReading {
  readonly rss: number;
  /** Sum of V8 heapUsed over the Node processes; NaN for Python. */
  readonly heap: number;
}

export interface RunningServer {
  readonly variant: Variant;
  readonly targets: readonly ServerTarget[];
  /** The processes started (their workers are found through /proc when needed). */
  readonly roots: readonly number[];
  pids(): number[];
  memory(): Promise<MemoryReading>;
  stop(): Promise<void>;
}

function pinned(cpu: string, command: string, args: string[]): [string, string[]] {
  return cpu === '' ? [command, args] : ['taskset', ['-c', cpu, command, ...args]];
}

function commandFor(
  variant: Variant,
  context: ServerContext,
  port: number,
  processes: number,
): [string, string[]] {
  const probe = join(context.work, 'dist', 'mem-probe.js');
  // BENCH_SERVER_NODE_FLAGS adds node flags to the Node servers, e.g. --cpu-prof to profile one.
  const extra = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const node = [process.execPath, '--expose-gc', '--import', probe, ...extra];
  switch (variant.key) {
    case 'naive':
      return [node[0]!, [...node.slice(1), join(context.work, 'dist', 'naive-ws.js')]];
    case 'socketio':
      return [node[0]!, [...node.slice(1), join(context.work, 'dist', 'socketio.js')]];
    case 'python':
      return [context.python, [join(context.repo, 'bench', 'peers', 'notifications.py')]];
    case 'sidecast':
      return [
        node[0]!,
        [
          ...node.slice(1),
          join(context.repo, 'bin', 'sidecast.js'),
          'serve',
          `--port=${port}`,
          `--workers=${processes}`,
          `--django-db=${context.databaseUrl}`,
          ...(context.stream
            ? [
                '--bus=redis-streams',
                `--stream=${context.stream.name}`,
                `--history-max-entries=${context.stream.historyMaxEntries}`,
                `--recover-max=${context.stream.recoverMax}`,
              ]
            : ['--bus=redis', `--channel=${context.channel}`]),
          `--redis=${context.redisUrl}`,
          '--log-level=warn',
          ...(context.sidecastArgs ?? []),
        ],
      ];
  }
}

/**
 * Starts `processes` processes of a variant. sidecast runs them as `serve --workers N` on one
 * port; the peers run N independent processes on N ports, which is how each is scaled out.
 */
export async function startServer(
  variant: Variant,
  context: ServerContext,
  processes: number,
): Promise<RunningServer> {
  const probeDir = join(context.work, 'probe', variant.key);
  rmSync(probeDir, { recursive: true, force: true });
  mkdirSync(probeDir, { recursive: true });
  const instances = variant.key === 'sidecast' ? 1 : processes;
  const ports = await Promise.all(Array.from({ length: instances }, () => freePort()));
  const children: ChildProcess[] = [];
  let output = '';
  for (const port of ports) {
    const [command, args] = pinned(context.cpu, ...commandFor(variant, context, port, processes));
    const child = spawn(command, args, {
      cwd: context.repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        BENCH_HOST: '127.0.0.1',
        BENCH_PORT: String(port),
        BENCH_REDIS_URL: context.redisUrl,
        BENCH_CHANNEL: context.channel,
        BENCH_DB_URL: context.databaseUrl,
        BENCH_DB_NAME: context.databaseName,
        BENCH_PROBE_DIR: probeDir,
        DJANGO_SECRET_KEY: context.secretKey,
        DJANGO_SETTINGS_MODULE: 'bench_settings',
        PYTHONPATH: join(context.repo, 'bench', 'peers'),
        SESAME_MAX_AGE: String(context.maxAge),
      },
    });
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.push(child);
  }
  const exited = () => children.some((child) => child.exitCode !== null || child.signalCode);
  const subscribers = new Redis(context.redisUrl);
  try {
    const ready = await until(
      async () => {
        if (exited()) return true;
        if (context.stream && variant.key === 'sidecast') {
          // The streams bus subscribes to nothing: ready when /readyz says so.
          const status = await fetch(`http://127.0.0.1:${ports[0]}/readyz`).then(
            (response) => response.status,
            () => 0,
          );
          return status === 200;
        }
        const counts = (await subscribers.pubsub('NUMSUB', context.channel)) as [string, number];
        if (Number(counts[1]) < processes) return false;
        const accepting = await Promise.all(ports.map(portAccepts));
        return accepting.every(Boolean);
      },
      60_000,
      100,
    );
    if (!ready || exited()) {
      for (const child of children) child.kill('SIGKILL');
      throw new Error(`${variant.label} did not start:\n${output}`);
    }
  } finally {
    subscribers.disconnect();
  }
  const roots = children.map((child) => child.pid!);
  const pids = () => roots.flatMap((pid) => processTree(pid));
  return {
    variant,
    targets: ports.map((port) => ({ host: '127.0.0.1', port, protocol: variant.protocol })),
    roots,
    pids,
    memory: () => readMemory(variant, pids(), probeDir),
    async stop() {
      if (process.env.BENCH_SERVER_NODE_FLAGS) {
        // A profiled server must exit on its own to write its profile.
        for (const pid of roots) process.kill(pid, 'SIGTERM');
        await until(() => children.every((c) => c.exitCode !== null || c.signalCode), 15_000);
      }
      const all = pids();
      for (const pid of all) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await until(
        () => children.every((child) => child.exitCode !== null || child.signalCode),
        10_000,
      );
    },
  };
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Node processes collect garbage and report their heap (mem-probe.ts); RSS comes from /proc. */
async function readMemory(
  variant: Variant,
  pids: readonly number[],
  probeDir: string,
): Promise<MemoryReading> {
  if (variant.runtime === 'python') {
    await sleep(500);
    return { rss: pids.reduce((total, pid) => total + rssBytes(pid), 0), heap: NaN };
  }
  const files = pids.map((pid) => join(probeDir, `mem-${pid}.json`));
  for (const file of files) rmSync(file, { force: true });
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  const done = await until(() => files.every((file) => existsSync(file)), 10_000, 50);
  if (!done) throw new Error(`${variant.label}: memory probe did not answer`);
  await sleep(300); // let freed pages settle before reading RSS
  let heap = 0;
  for (const file of files)
    heap += (JSON.parse(readFileSync(file, 'utf8')) as { heapUsed: number }).heapUsed;
  if (process.env.BENCH_DEBUG_MEMORY)
    process.stderr.write(
      `memory ${variant.key}: ${pids.map((pid) => `${pid}=${rssBytes(pid) >> 20}MiB`).join(' ')}\n`,
    );
  return { rss: pids.reduce((total, pid) => total + rssBytes(pid), 0), heap };
}
