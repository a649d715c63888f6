/**
 * Shared parts of the end-to-end tests: a sidecast server for a Django site (in this process or as
 * a real `sidecast serve` process), a Redis subscriber that captures exactly what Django
 * published, and a seeded random generator. Their clients are test/support/client.ts's.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { SERVE_OPTIONS, startSidecast, type Sidecast } from '../../src/app.js';
import { loadDjangoSettings, parseArgs } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import { spawnTracked } from './children.js';
import type { DjangoSite } from './django.js';
import { waitFor } from './wait.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(REPO_ROOT, 'bin', 'sidecast.js');

/**
 * Starts sidecast in this process against the site's database, Redis and channel; it logs
 * nothing unless given a `logger` (test/support/observe.ts captureLogs).
 */
export function startSiteServer(
  site: DjangoSite,
  flags: readonly string[] = [],
  logger?: Logger,
): Promise<Sidecast> {
  const argv = ['--port', '0', '--django-db', site.dbUrl, '--redis', site.redisUrl];
  argv.push('--channel', site.channel, '--log-level', 'silent');
  // The channel the site's signals send control messages on, unless the test names another.
  if (!flags.includes('--control-channel'))
    argv.push('--control-channel', site.env.SIDECAST_CONTROL_CHANNEL!);
  argv.push(...flags);
  return startSidecast({
    options: parseArgs(SERVE_OPTIONS, argv, {}).options,
    django: loadDjangoSettings(site.env),
    ...(logger ? { logger } : {}),
  });
}

/** Everything published on one Redis channel, as the bytes Redis delivered. */
export interface ChannelCapture {
  readonly payloads: Buffer[];
  waitFor(count: number, timeoutMs?: number): Promise<Buffer[]>;
  close(): Promise<void>;
}

export async function captureChannel(redisUrl: string, channel: string): Promise<ChannelCapture> {
  // No retries: a missing Redis must fail the test at once.
  const redis = new Redis(redisUrl, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  const payloads: Buffer[] = [];
  redis.on('messageBuffer', (_channel: Buffer, message: Buffer) => payloads.push(message));
  await redis.subscribe(channel);
  return {
    payloads,
    async waitFor(count, timeoutMs = 10_000) {
      await waitFor(() => payloads.length >= count, timeoutMs, `${count} events on ${channel}`);
      return payloads.slice(0, count);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The event's content_type_id, read from the bytes Django published. */
export function contentTypeOf(payload: Buffer): number | null {
  const event = JSON.parse(payload.toString('utf8')) as { content_type_id?: unknown };
  return typeof event.content_type_id === 'number' ? event.content_type_id : null;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The token with the character at `index` (negative: from the end) replaced by another one. */
export function tamper(token: string, index: number): string {
  const at = index < 0 ? token.length + index : index;
  const old = token[at];
  if (old === undefined) throw new Error(`no character ${index} in a ${token.length}-char token`);
  // Flip the high bits of the 6-bit value, which every position of a token uses.
  const value = BASE64URL.indexOf(old);
  const replacement = BASE64URL[value ^ 0b100000]!;
  return token.slice(0, at) + replacement + token.slice(at + 1);
}

/** Small seeded PRNG (mulberry32), so a failing random scenario can be replayed from its seed. */
export interface Random {
  readonly seed: number;
  next(): number;
  int(below: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  sample<T>(items: readonly T[], count: number): T[];
}

export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number): number => Math.floor(next() * below);
  return {
    seed,
    next,
    int,
    chance: (probability) => next() < probability,
    pick: (items) => items[int(items.length)]!,
    sample(items, count) {
      const pool = [...items];
      const chosen: (typeof items)[number][] = [];
      while (chosen.length < count && pool.length > 0)
        chosen.push(pool.splice(int(pool.length), 1)[0]!);
      return chosen;
    },
  };
}

/** SIDECAST_TEST_SEED replays a run; otherwise a fresh seed. */
export function testSeed(): number {
  const fixed = process.env.SIDECAST_TEST_SEED;
  return fixed ? Number(fixed) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

// Real `sidecast serve` processes ------------------------------------------------------------

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let built = false;

/** bin/sidecast.js runs dist/: build it when it is missing or older than src/. */
export function ensureBuilt(): void {
  if (built) return;
  const main = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  const builtAt = statSync(main, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (builtAt < newestMtime(join(REPO_ROOT, 'src'))) {
    const result = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`build failed:\n${result.stdout}${result.stderr}`);
  }
  built = true;
}

/** A minimal environment for a sidecast process: PATH plus what is given, nothing inherited. */
export function processEnv(vars: Readonly<Record<string, string>>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', ...vars };
}

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  output(): { stdout: string; stderr: string };
  /** SIGTERM (graceful drain), then the exit code. */
  stop(): Promise<number | null>;
}

function serveChild(args: readonly string[], env: Record<string, string>): ChildProcess {
  ensureBuilt();
  return spawnTracked(process.execPath, [BIN, 'serve', ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: 'pipe',
  });
}

/** Spawns `sidecast serve` and resolves once it prints that it is listening. */
export async function spawnServe(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServeProcess> {
  const child = serveChild(args, env);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sidecast serve did not start within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      stdout += `${line}\n`;
      const match = /^sidecast listening on (ws:\/\/\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]!);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sidecast serve exited (${signal ?? code}) before listening:\n${stderr}`));
    });
  });
  return {
    url,
    child,
    output: () => ({ stdout, stderr }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(kill);
      return code;
    },
  };
}

export interface ServeResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `sidecast serve` to completion (it is expected to fail); kills it after `timeoutMs`. */
export async function runServe(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServeResult> {
  const child = serveChild(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}
