/** The benchmark's settings: full (what RESULTS.md holds) or --quick, plus a few overrides. */
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { VariantKey } from './lib/servers.js';
import { readFlags } from './lib/flags.js';

export interface Settings {
  readonly help?: string;
  /** Re-render the table from a saved run (bench/.work/last-run.json) instead of measuring. */
  readonly render?: string;
  readonly quick: boolean;
  readonly command: string;
  readonly out: string;
  readonly rounds: number;
  readonly clients: number;
  readonly bigClients: number;
  readonly bigProcesses: number;
  readonly clientProcesses: number;
  readonly inFlight: number;
  readonly window: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly latencyMs: number;
  readonly loads: readonly number[];
  readonly maxAge: number;
  readonly stormTimeoutMs: number;
  readonly bigTimeoutMs: number;
  readonly serverCpu: string;
  readonly clientCpu: string;
  readonly variants: readonly VariantKey[];
  describe(meanShare: number, audience: readonly number[], users: number): Record<string, string>;
}

const HELP = `Usage: npm run bench [-- OPTIONS]

Measures sidecast beside a naive ws loop, the guide's Python server and Socket.IO, and writes
bench/RESULTS.md (or, with --quick, bench/.work/RESULTS-quick.md).

Options:
  --quick            500 clients, 1 round, short phases (a few minutes)
  --rounds N         interleaved rounds (default 3; quick 1)
  --clients N        connections for storm, memory, capacity and latency (default 10000)
  --big-clients N    connections for the multi-process memory figure (default 30000; 0 skips it)
  --only LIST        comma-separated subset of naive,sidecast,python,socketio
  --out PATH         where to write the results table
  --render JSON      write the table again from a saved run (bench/.work/last-run.json)
  --help
`;

const ALL: readonly VariantKey[] = ['naive', 'sidecast', 'python', 'socketio'];

export function parseSettings(argv: readonly string[]): Settings {
  const flags = readFlags(argv, [
    'quick',
    'help',
    'rounds',
    'clients',
    'big-clients',
    'only',
    'out',
    'render',
  ]);
  const quick = flags.has('quick');
  const number = (name: string, fallback: number) => {
    const raw = flags.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} needs a whole number`);
    return value;
  };
  const clients = number('clients', quick ? 500 : 10_000);
  const bigClients = number('big-clients', quick ? 1500 : 30_000);
  const variants = (flags.get('only') ?? ALL.join(',')).split(',') as VariantKey[];
  for (const key of variants) if (!ALL.includes(key)) throw new Error(`unknown server ${key}`);
  const repo = resolve(import.meta.dirname, '..');
  const settings = {
    quick,
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    out: resolve(
      flags.get('out') ??
        (quick
          ? join(repo, 'bench', '.work', 'RESULTS-quick.md')
          : join(repo, 'bench', 'RESULTS.md')),
    ),
    rounds: Math.max(1, number('rounds', quick ? 1 : 3)),
    clients,
    bigClients,
    // 30,000 sockets do not fit in one process (20,000 descriptors each).
    bigProcesses: 2,
    clientProcesses: 2,
    inFlight: 500,
    window: 100_000,
    warmupMs: quick ? 500 : 1000,
    measureMs: quick ? 1500 : 3000,
    latencyMs: quick ? 2000 : 4000,
    loads: [0.25, 0.5, 0.75],
    maxAge: 300,
    stormTimeoutMs: quick ? 60_000 : 150_000,
    bigTimeoutMs: quick ? 60_000 : 200_000,
    serverCpu: availableParallelism() > 1 ? '0' : '',
    clientCpu: availableParallelism() > 1 ? '1' : '0',
    variants,
  };
  return {
    ...settings,
    ...(flags.has('help') ? { help: HELP } : {}),
    ...(flags.has('render') ? { render: resolve(flags.get('render')!) } : {}),
    describe(meanShare, audience, users) {
      return {
        connections: `${settings.clients.toLocaleString('en-US')} (one per user) for the storm, memory, capacity and latency; ${settings.bigClients.toLocaleString('en-US')} (${settings.bigClients / Math.max(1, users)} per user) over ${settings.bigProcesses} server processes for the second memory figure`,
        rounds: `${settings.rounds}, interleaved (variant order rotated each round)`,
        pinning: `servers on CPU ${settings.serverCpu || 'any'} (second memory figure: unpinned), ${settings.clientProcesses} client processes and the orchestrator on CPU ${settings.clientCpu}; PostgreSQL and Redis unpinned`,
        clients: `raw-socket WebSocket clients offering permessage-deflate (client_max_window_bits), spread over 127.0.0.2–127.0.0.9, at most ${settings.inFlight} upgrades in flight`,
        events: `~330-byte JSON shaped like the guide's LogEntry events, spread evenly over ${audience.length} models; an event reaches ${Math.round(meanShare * 100)}% of users on average (${Math.round((Math.min(...audience) / users) * 100)}–${Math.round((Math.max(...audience) / users) * 100)}%)`,
        capacity: `closed loop, ${settings.window.toLocaleString('en-US')} deliveries outstanding, ${settings.warmupMs} ms warm-up then ${settings.measureMs} ms measured`,
        latency: `open loop at ${settings.loads.map((l) => `${l * 100}%`).join(', ')} of the same server's capacity from the same round, ${settings.latencyMs} ms each, stamped with the scheduled send time`,
        tokens: `django-sesame v2, SESAME_MAX_AGE=${settings.maxAge}, minted just before each wave`,
      };
    },
  };
}
