/**
 * What the benchmark needs before it can start a server: sidecast built into dist/ (the real
 * `bin/sidecast.js` is what runs), the bench's own Node entry points compiled to plain
 * JavaScript (no loader in the measured processes), and the Python peer's virtualenv.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { createBenchDatabase, type BenchDatabase } from './database.js';
import type { BenchUser } from './population.js';
import { run } from './proc.js';
import type { ServerContext } from './servers.js';

export async function buildSidecast(repo: string): Promise<string | undefined> {
  const tsc = join(repo, 'node_modules', '.bin', 'tsc');
  try {
    await run(tsc, ['-p', 'tsconfig.build.json'], { cwd: repo, timeoutMs: 300_000 });
    return undefined;
  } catch (error) {
    // tsc still writes JavaScript for files with type errors; go on if the CLI was emitted.
    if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) throw error;
    return String(error).split('\n').slice(0, 6).join('\n');
  }
}

export const ENTRY_POINTS = [
  'bench/load/client-process.ts',
  'bench/peers/naive-ws.ts',
  'bench/peers/socketio.ts',
  'bench/peers/mem-probe.ts',
];

export async function buildBench(repo: string, work: string): Promise<void> {
  await build({
    // Flat output: dist/<name>.js for bench/<dir>/<name>.ts.
    entryPoints: Object.fromEntries(
      ENTRY_POINTS.map((entry) => [basename(entry, '.ts'), join(repo, entry)]),
    ),
    outdir: join(work, 'dist'),
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
  });
}

/** bench/.work/venv with bench/peers/requirements.txt, rebuilt only when that file changes. */
export async function ensureVenv(repo: string, work: string): Promise<string> {
  const venv = join(work, 'venv');
  const python = join(venv, 'bin', 'python');
  const requirements = join(repo, 'bench', 'peers', 'requirements.txt');
  const stamp = join(venv, 'requirements.sha256');
  const wanted = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const recorded = existsSync(stamp) ? readFileSync(stamp, 'utf8') : '';
  if (recorded === wanted && existsSync(python)) return python;
  await run(process.env.SIDECAST_PYTHON ?? 'python3', ['-m', 'venv', venv], { timeoutMs: 120_000 });
  await run(
    python,
    ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', '-r', requirements],
    { timeoutMs: 600_000 },
  );
  writeFileSync(stamp, wanted);
  return python;
}

export async function versions(python: string, repo: string): Promise<Record<string, string>> {
  const script =
    'import django, websockets, redis, sesame, psycopg, sys;' +
    'from importlib.metadata import version as v;' +
    'print(sys.version.split()[0], django.__version__, websockets.__version__, redis.__version__,' +
    ' v("django-sesame"), psycopg.__version__)';
  const [pythonVersion, django, websockets, redis, sesame, psycopg] = (
    await run(python, ['-c', script], { timeoutMs: 30_000 })
  )
    .trim()
    .split(' ');
  const npm = (name: string) => {
    try {
      const manifest = join(repo, 'node_modules', name, 'package.json');
      return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  return {
    node: process.version,
    ws: npm('ws'),
    'socket.io': npm('socket.io'),
    '@socket.io/redis-adapter': npm('@socket.io/redis-adapter'),
    ioredis: npm('ioredis'),
    pg: npm('pg'),
    python: pythonVersion ?? '?',
    django: django ?? '?',
    websockets: websockets ?? '?',
    'redis-py': redis ?? '?',
    'django-sesame': sesame ?? '?',
    psycopg: psycopg ?? '?',
  };
}

/**
 * What every bench does before its first server: pins this process (and so the clients it
 * starts) to `cpu`, leaving the other core to the servers; builds sidecast and the bench entry
 * points; readies the Python virtualenv; reads the versions the report names. `buildWarning`
 * says what tsc reported when it emitted JavaScript despite type errors (see buildSidecast).
 */
export async function prepareBench(
  repo: string,
  work: string,
  cpu: string,
  log: (message: string) => void,
): Promise<{ python: string; versions: Record<string, string>; buildWarning?: string }> {
  mkdirSync(work, { recursive: true });
  await run('taskset', ['-a', '-cp', cpu, String(process.pid)], { timeoutMs: 5000 });
  log('building sidecast and the bench entry points');
  const buildWarning = await buildSidecast(repo);
  if (buildWarning)
    log(`sidecast build reported errors (continuing with the emitted files):\n${buildWarning}`);
  await buildBench(repo, work);
  log('preparing the Python virtualenv');
  const python = await ensureVenv(repo, work);
  return { python, versions: await versions(python, repo), buildWarning };
}

export interface BenchSite {
  readonly secretKey: string;
  readonly db: BenchDatabase;
  /** For startServer: servers on `db` that read events from the given Redis channel. */
  readonly context: ServerContext;
}

/** A fresh Django database of `users` on PostgreSQL, under a secret key made for this run. */
export async function createBenchSite(options: {
  readonly repo: string;
  readonly work: string;
  readonly python: string;
  readonly users: readonly BenchUser[];
  readonly redisUrl: string;
  readonly channel: string;
  readonly maxAge: number;
  /** taskset CPU list for the servers. */
  readonly cpu: string;
  readonly log: (message: string) => void;
}): Promise<BenchSite> {
  const { repo, work, python, users, redisUrl, channel, maxAge, cpu, log } = options;
  const secretKey = randomBytes(32).toString('base64url');
  log(`creating the Django database with ${users.length} users`);
  const db = await createBenchDatabase(repo, python, secretKey, users);
  const context: ServerContext = {
    repo,
    work,
    python,
    databaseUrl: db.url,
    databaseName: db.name,
    redisUrl,
    channel,
    secretKey,
    maxAge,
    cpu,
  };
  return { secretKey, db, context };
}
