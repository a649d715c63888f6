/**
 * A private redis-server for one run, so that INFO commandstats counts only what the run's own
 * processes send. No persistence; stopped (SIGKILL) at the end.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, until } from './proc.js';

export interface PrivateRedis {
  readonly url: string;
  readonly version: string;
  /** Calls per command since the server started (INFO commandstats), `info` left out. */
  commandCalls(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}/0`;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined); // refused until the server listens
  const up = await until(
    async () => {
      if (child.exitCode !== null) return true;
      return admin.ping().then(
        () => true,
        () => false,
      );
    },
    10_000,
    100,
  );
  if (!up || child.exitCode !== null) {
    child.kill('SIGKILL');
    admin.disconnect();
    throw new Error('redis-server did not start');
  }
  const server = (await admin.info('server')) as string;
  const version = /^redis_version:(\S+)/m.exec(server)?.[1] ?? '?';
  return {
    url,
    version,
    async commandCalls() {
      const text = (await admin.info('commandstats')) as string;
      const calls = new Map<string, number>();
      for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        if (match[1] !== 'info') calls.set(match[1]!, Number(match[2]));
      }
      return calls;
    },
    async stop() {
      admin.disconnect();
      child.kill('SIGKILL');
      await until(() => child.exitCode !== null || child.signalCode !== null, 5000);
    },
  };
}

/** after − before, per command, largest first, zero counts left out. */
export function callsBetween(
  before: Map<string, number>,
  after: Map<string, number>,
): [string, number][] {
  const out: [string, number][] = [];
  for (const [name, calls] of after) {
    const diff = calls - (before.get(name) ?? 0);
    if (diff > 0) out.push([name, diff]);
  }
  return out.sort((a, b) => b[1] - a[1]);
}
