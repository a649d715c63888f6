/**
 * What the benchmark needs before it can start a server: sidecast built into dist/ (the real
 * `bin/sidecast.js` is what runs), the bench's own Node entry points compiled to plain
 * JavaScript (no loader in the measured processes), and the Python peer's virtualenv.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { run } from './proc.js';

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
