/**
 * sidecast/client with `protocol: 'v1'` in real Chromium, resuming after lost connections, against
 * a real sidecast on the redis-streams bus (its own stream key in Redis database 1) with the table
 * authenticator. It needs the server's v1 protocol and the redis-streams bus.
 *
 * The connection is lost by stopping sidecast; events published meanwhile go straight into the
 * stream, as Django publishes them (XADD ... payload <event JSON>), and a restarted sidecast must
 * replay them to the page that comes back, each once, or tell it that it cannot.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import type { Sidecast } from '../../src/app.js';
import { serveClientModules } from '../../src/demo/page.js';
import { builtClient, collectPageErrors, launchChromium } from '../support/browser.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const REDIS_URL = 'redis://127.0.0.1:6379/1';
const BOOKS = 7;
const ORDERS = 8;

interface RecoveryLog {
  states: { state: string; recovered?: boolean; gap?: boolean }[];
  welcomes: { recovered: boolean; gap: boolean; replayed: number; recoverable: boolean }[];
  events: { event: { object: string }; raw: string }[];
}

declare global {
  interface Window {
    recovery: RecoveryLog;
  }
}

/** One v1 client for ?token=T, its position in sessionStorage under ?key=K. */
const TEST_PAGE = `<!doctype html>
<meta charset="utf-8">
<title>sidecast recovery test</title>
<script type="module">
import { createClient } from '/client/index.js';
const query = new URLSearchParams(location.search);
const log = (window.recovery = { states: [], welcomes: [], events: [] });
createClient({
  url: 'ws://' + location.host + '/',
  protocol: 'v1',
  storage: sessionStorage,
  storageKey: query.get('key'),
  backoff: { initialMs: 200, maxMs: 1000 },
  getToken: () => query.get('token'),
  onState: ({ state, recovered, gap }) => log.states.push({ state, recovered, gap }),
  onWelcome: (welcome) => log.welcomes.push(welcome),
  onEvent: (event, raw) => log.events.push({ event, raw }),
});
</script>`;

describe('sidecast/client v1 recovery in Chromium', () => {
  const stream = `sidecast-test-recovery-${randomBytes(6).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const authenticator = tableAuthenticator({
    alice: principal('alice', [BOOKS]),
    bob: principal('bob', [BOOKS]),
    carol: principal('carol', [BOOKS]),
  });
  const modules = serveClientModules(builtClient());
  let app: Sidecast;
  let browser: Browser;

  function page(request: IncomingMessage, response: ServerResponse): boolean {
    const url = new URL(request.url ?? '/', 'http://test.invalid');
    if (url.pathname === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(TEST_PAGE);
      return true;
    }
    if (url.pathname === '/favicon.ico') {
      response.writeHead(204).end();
      return true;
    }
    return modules(request, response);
  }

  const startServer = (port: number) =>
    startTestServer(
      [
        ...['--port', String(port), '--drain-seconds', '0.1'],
        ...['--bus', 'redis-streams', '--stream', stream, '--redis', REDIS_URL],
      ],
      { authenticator, page },
    );

  /** Stops sidecast (its clients see 1001 and start retrying), runs `meanwhile`, starts it again. */
  async function outage(meanwhile: () => Promise<void>): Promise<void> {
    const port = app.port;
    await app.shutdown();
    await meanwhile();
    app = await startServer(port);
  }

  /** Publishes into the stream directly, as Django does, while no sidecast is running. */
  const xadd = (payload: string) => redis.xadd(stream, '*', 'payload', payload);

  const tabs: Page[] = [];
  async function openClient(token: string): Promise<{ tab: Page; errors: string[] }> {
    const tab = await browser.newPage();
    tabs.push(tab);
    const errors = collectPageErrors(tab);
    await tab.goto(`http://127.0.0.1:${app.port}/?token=${token}&key=${token}-position`);
    await tab.waitForFunction(() => window.recovery?.welcomes.length === 1);
    return { tab, errors };
  }
  const logOf = (tab: Page) => tab.evaluate(() => window.recovery);

  const book = (object: string) => event(BOOKS, { model: 'book', object });

  before(async () => {
    await redis.connect();
    app = await startServer(0);
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const tab of tabs.splice(0)) await tab.close();
    await waitFor(() => app.server.connectionCount === 0, 5000, 'the closed tabs to disconnect');
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    await redis.del(stream, `${stream}:epoch`);
    redis.disconnect();
  });

  it('comes back with every missed event, once, in order, and says it recovered', async () => {
    const alice = await openClient('alice');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'alice live');
    const first = await logOf(alice.tab);
    assert.deepEqual(
      first.welcomes.map(({ recovered, gap, recoverable }) => ({ recovered, gap, recoverable })),
      [{ recovered: false, gap: false, recoverable: true }],
      'a first visit has nothing to recover and no gap',
    );

    const live = [book('before 1'), book('before 2')];
    for (const payload of live) await app.bus.publish(payload);
    await alice.tab.waitForFunction(() => window.recovery.events.length === 2);

    // A payload with spacing and escapes of its own, to show `raw` is the text as published.
    const missed = [book('missed 1'), '{"content_type_id": 7, "object": "Caf\\u00e9"}'];
    await outage(async () => {
      await alice.tab.waitForFunction(() =>
        window.recovery.states.some(({ state }) => state === 'reconnecting'),
      );
      await xadd(missed[0]!);
      await xadd(event(ORDERS, { object: 'not for alice' }));
      await xadd(missed[1]!);
    });
    await alice.tab.waitForFunction(() => window.recovery.welcomes.length === 2, null, {
      timeout: 10_000,
    });
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'alice back');
    const after = book('after');
    await app.bus.publish(after);
    await alice.tab.waitForFunction(() => window.recovery.events.length >= 5);

    const log = await logOf(alice.tab);
    assert.deepEqual(
      log.events.map((entry) => entry.raw),
      [...live, ...missed, after],
      'every event exactly once, replayed ones before the live one, byte for byte',
    );
    assert.equal(log.events[3]!.event.object, 'Café');
    const { recovered, gap, replayed } = log.welcomes[1]!;
    assert.deepEqual({ recovered, gap, replayed }, { recovered: true, gap: false, replayed: 2 });
    assert.deepEqual(log.states.at(-1), { state: 'open', recovered: true, gap: false });

    // A reload keeps the position (sessionStorage): it resumes, with nothing to replay.
    await alice.tab.reload();
    await alice.tab.waitForFunction(() => window.recovery?.welcomes.length === 1);
    const reloaded = await logOf(alice.tab);
    assert.deepEqual(
      reloaded.welcomes.map(({ recovered, gap, replayed }) => ({ recovered, gap, replayed })),
      [{ recovered: true, gap: false, replayed: 0 }],
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual((await logOf(alice.tab)).events, [], 'nothing delivered twice');
    assert.deepEqual(alice.errors, []);
  });

  it('is told it could not recover when the events it missed were trimmed', async () => {
    const bob = await openClient('bob');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'bob live');
    await app.bus.publish(book('seen'));
    await bob.tab.waitForFunction(() => window.recovery.events.length === 1);

    await outage(async () => {
      await bob.tab.waitForFunction(() =>
        window.recovery.states.some(({ state }) => state === 'reconnecting'),
      );
      for (let i = 1; i <= 5; i++) await xadd(book(`missed ${i}`));
      // Keep only the last two: the first three events bob missed are gone from the history.
      await redis.xtrim(stream, 'MAXLEN', 2);
    });
    await bob.tab.waitForFunction(() => window.recovery.welcomes.length === 2, null, {
      timeout: 10_000,
    });
    const log = await logOf(bob.tab);
    const { recovered, gap, replayed } = log.welcomes[1]!;
    assert.deepEqual({ recovered, gap, replayed }, { recovered: false, gap: true, replayed: 0 });
    assert.deepEqual(log.states.at(-1), { state: 'open', recovered: false, gap: true });

    // Still connected and live: the application refetches, new events keep coming.
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'bob back');
    await app.bus.publish(book('after the gap'));
    await bob.tab.waitForFunction(() => window.recovery.events.length === 2);
    assert.deepEqual(
      (await logOf(bob.tab)).events.map((entry) => entry.event.object),
      ['seen', 'after the gap'],
      'no partial replay',
    );
    assert.deepEqual(bob.errors, []);
  });

  it('is told it could not recover when the history was lost (a new epoch)', async () => {
    const carol = await openClient('carol');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'carol live');
    await app.bus.publish(book('before the loss'));
    await carol.tab.waitForFunction(() => window.recovery.events.length === 1);
    const before = await carol.tab.evaluate(() => sessionStorage.getItem('carol-position'));

    // What a Redis restarted without persistence leaves: neither the stream nor its epoch.
    await outage(async () => {
      await redis.del(stream, `${stream}:epoch`);
      await xadd(book('in the new history'));
    });
    await carol.tab.waitForFunction(() => window.recovery.welcomes.length === 2, null, {
      timeout: 10_000,
    });
    const log = await logOf(carol.tab);
    const { recovered, gap, replayed } = log.welcomes[1]!;
    assert.deepEqual({ recovered, gap, replayed }, { recovered: false, gap: true, replayed: 0 });
    const stored = await carol.tab.evaluate(() => sessionStorage.getItem('carol-position'));
    assert.notEqual(
      JSON.parse(stored!).epoch,
      JSON.parse(before!).epoch,
      'the position now belongs to the new history',
    );
    assert.deepEqual(carol.errors, []);
  });
});
