import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnTracked } from '../support/children.js';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { ensureBuilt } from '../support/e2e.js';
import { freePort } from '../support/ports.js';
import { connectClient, type TestClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { httpGet } from '../support/observe.js';
import { childPids, groupMembers, killGroup } from '../support/processes.js';
import { event } from '../support/server.js';

/**
 * `sidecast serve` as operators run it: a real process from bin/sidecast.js (the build in dist/),
 * real sesame tokens from a migrated Django site, signals from outside.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Served {
  readonly child: ChildProcess;
  readonly port: number;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const publishKey = randomBytes(16).toString('hex');

/**
 * Each server leads a process group of its own: to signal it as systemd would, and to kill
 * whatever is left of it, workers included, when a test fails.
 */
function serve(site: DjangoSite, flags: string[]): Served {
  const child = spawnTracked(
    process.execPath,
    [join(ROOT, 'bin', 'sidecast.js'), 'serve', ...flags],
    {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, ...site.env, SIDECAST_PUBLISH_KEY: publishKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return { child, port: 0, stderr: () => stderr, exited };
}

/** Waits for the "sidecast listening on ws://..." line and returns the port. */
async function listening(served: Served, timeoutMs = 20_000): Promise<Served> {
  const lines = createInterface({ input: served.child.stdout! });
  const timer = setTimeout(() => served.child.kill('SIGKILL'), timeoutMs);
  try {
    for await (const line of lines) {
      const match = /^sidecast listening on ws:\/\/[^:]+:(\d+)\//.exec(line);
      if (match) return { ...served, port: Number(match[1]) };
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`sidecast exited before listening:\n${served.stderr()}`);
}

async function publish(port: number, payload: string): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publishKey}`, 'content-type': 'application/json' },
    body: payload,
  });
  assert.equal(response.status, 202, await response.text());
}

/** Publishes until every client has received something: then all are authenticated and live. */
async function untilAllLive(port: number, clients: TestClient[], contentType: number) {
  const deadline = Date.now() + 15_000;
  while (clients.some((client) => client.messages.length === 0)) {
    if (Date.now() > deadline) throw new Error('clients never went live');
    await publish(port, event(contentType, { ping: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('sidecast serve: signals and start-up failures', () => {
  let site: DjangoSite;
  let bookType: number;
  const children: ChildProcess[] = [];

  const tokens = (count: number) =>
    Promise.all(Array.from({ length: count }, () => site.driver.getToken({ username: 'reader' })));

  async function start(flags: string[]): Promise<Served> {
    const served = serve(site, ['--port', '0', '--bus', 'memory', ...flags]);
    children.push(served.child);
    return listening(served);
  }

  async function connectAll(served: Served, count: number): Promise<TestClient[]> {
    const url = `ws://127.0.0.1:${served.port}/`;
    const clients = await Promise.all(
      (await tokens(count)).map((token) => connectClient(url, token)),
    );
    await untilAllLive(served.port, clients, bookType);
    return clients;
  }

  before(async () => {
    ensureBuilt();
    site = await createDjangoSite({ dialect: 'sqlite' });
    await site.driver.createUser({ username: 'reader', perms: ['catalog.view_book'] });
    bookType = await site.driver.contentTypeId({ appLabel: 'catalog', model: 'book' });
  });
  after(async () => {
    for (const child of children) killGroup(child.pid!);
    await site?.close();
  });

  for (const [workers, signal, group] of [
    [1, 'SIGTERM', false],
    [1, 'SIGINT', false],
    [2, 'SIGTERM', false],
    // systemd and Ctrl-C signal every process of the group: workers must not exit early.
    [2, 'SIGTERM', true],
    [2, 'SIGINT', true],
  ] as const) {
    const to = group ? 'the process group' : 'the server';
    it(`${signal} to ${to}, --workers ${workers}: every client gets 1001, spread over --drain-seconds, exit 0`, async () => {
      const served = await start(['--workers', String(workers), '--drain-seconds', '1']);
      const clients = await connectAll(served, 8);
      // Whichever worker answers, /metrics describes the whole server.
      for (let i = 0; i < 4; i++) {
        assert.equal(await metric(served.port, 'sidecast_connections'), 8);
      }
      const closedAt: number[] = [];
      const closes = clients.map((client) =>
        client.closed.then((close) => {
          closedAt.push(Date.now());
          return close;
        }),
      );
      const signalled = Date.now();
      if (group) process.kill(-served.child.pid!, signal);
      else served.child.kill(signal);
      for (const close of await Promise.all(closes)) {
        assert.deepEqual(close, { code: 1001, reason: 'server shutting down' });
      }
      const { code, signal: killedBy } = await served.exited;
      assert.equal(killedBy, null);
      assert.equal(code, 0, served.stderr());
      const spread = Math.max(...closedAt) - Math.min(...closedAt);
      assert.ok(spread >= 300, `closes spread over ${spread} ms, not all at once`);
      assert.ok(Date.now() - signalled < 8000, 'the drain ends');
      const logged = served
        .stderr()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { msg: string });
      assert.ok(logged.some((line) => line.msg === 'shutting down'));
    });
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to the process group while the workers are starting: exit 0, nothing left`, async () => {
      const served = serve(site, ['--port', '0', '--bus', 'memory', '--workers', '2']);
      children.push(served.child);
      const pid = served.child.pid!;
      // As soon as both workers exist: they are still loading, long before they listen.
      const deadline = Date.now() + 10_000;
      while (childPids(pid).length < 2) {
        assert.ok(Date.now() < deadline, `no workers: ${served.stderr()}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      process.kill(-pid, signal);
      const { code, signal: killedBy } = await served.exited;
      assert.equal(killedBy, null, served.stderr());
      assert.equal(code, 0, served.stderr());
      assert.deepEqual(groupMembers(pid), [], 'no worker left');
    });
  }

  for (const workers of [1, 2]) {
    it(`a second signal exits at once (--workers ${workers})`, async () => {
      const served = await start(['--workers', String(workers), '--drain-seconds', '30']);
      const clients = await connectAll(served, 4);
      const started = Date.now();
      served.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 200));
      served.child.kill('SIGTERM');
      const { code } = await served.exited;
      assert.equal(code, 1);
      assert.ok(Date.now() - started < 3000, `exited after ${Date.now() - started} ms`);
      await Promise.all(clients.map((client) => client.closed));
    });
  }

  for (const workers of [1, 2]) {
    it(`fails fast with one line naming Redis when it cannot be reached (--workers ${workers})`, async () => {
      const port = await freePort();
      const redis = `redis://127.0.0.1:${port}/0`;
      const served = serve(site, ['--port', '0', '--workers', String(workers), '--redis', redis]);
      children.push(served.child);
      const { code } = await served.exited;
      assert.equal(code, 1);
      const lines = served.stderr().trim().split('\n');
      assert.equal(lines.length, 1, served.stderr());
      assert.ok(
        lines[0]!.startsWith(`sidecast: cannot reach Redis at ${redis}: ECONNREFUSED`),
        lines[0],
      );
    });
  }

  it('fails fast with one line naming the database when it cannot be reached', async () => {
    const port = await freePort();
    const served = serve(site, [
      '--port',
      '0',
      '--workers',
      '1',
      '--bus',
      'memory',
      '--django-db',
      `postgres://postgres@127.0.0.1:${port}/django`,
    ]);
    children.push(served.child);
    const { code } = await served.exited;
    assert.equal(code, 1);
    const lines = served.stderr().trim().split('\n');
    assert.equal(lines.length, 1, served.stderr());
    assert.match(
      lines[0]!,
      /^sidecast: cannot reach database postgres:\/\/127\.0\.0\.1:\d+\/django: /,
    );
  });

  it('with --wait-for-bus true starts without Redis, not ready, and stops cleanly', async () => {
    const port = await freePort();
    const served = await start([
      '--workers',
      '1',
      '--bus',
      'redis',
      '--redis',
      `redis://127.0.0.1:${port}/0`,
      '--wait-for-bus',
      'true',
    ]);
    const ready = await httpGet(served.port, '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /cannot reach Redis/);
    assert.equal((await httpGet(served.port, '/healthz')).status, 200);
    served.child.kill('SIGTERM');
    assert.equal((await served.exited).code, 0, served.stderr());
  });
});
