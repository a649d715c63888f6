/**
 * sidecast/client in real Chromium against a real sidecast: memory bus, the django-sesame
 * authenticator over a SQLite database in Django's schema, and a test page served through the
 * `page` hook that loads the compiled client (dist/client/index.js) as a plain ES module.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import type { Sidecast } from '../../src/app.js';
import {
  createSesameAuthenticator,
  type SesameAuthenticator,
} from '../../src/auth/sesame/authenticator.js';
import { loadDjangoSettings } from '../../src/config.js';
import { serveClientModules } from '../../src/demo/page.js';
import { pythonJson } from '../../src/demo/scenario.js';
import { createDjangoSqlite, unusablePassword, type SiteIds } from '../../src/demo/schema.js';
import { builtClient, collectPageErrors, launchChromium } from '../support/browser.js';
import { startTestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

interface PageLog {
  states: string[];
  /** Close codes reported with state changes. */
  codes: number[];
  events: { event: { content_type_id: number; object: string }; raw: string }[];
  tokens: number;
  sockets: number;
}

declare global {
  interface Window {
    log: PageLog;
  }
}

/** The page under test: one client for ?user=NAME, everything it sees recorded in window.log. */
const TEST_PAGE = `<!doctype html>
<meta charset="utf-8">
<title>sidecast client test</title>
<script type="module">
import { createClient } from '/client/index.js';
const user = new URLSearchParams(location.search).get('user');
const log = (window.log = { states: [], codes: [], events: [], tokens: 0, sockets: 0 });
// Counting sockets through the injectable constructor shows every attempt, even refused ones.
class CountingSocket extends WebSocket {
  constructor(url) {
    super(url);
    log.sockets++;
  }
}
createClient({
  url: 'ws://' + location.host + '/',
  WebSocket: CountingSocket,
  backoff: { initialMs: 200, maxMs: 1000 },
  async getToken() {
    log.tokens++;
    const response = await fetch('/test/token?user=' + user);
    if (!response.ok) throw new Error('token endpoint answered ' + response.status);
    return response.text();
  },
  onState({ state, code }) {
    log.states.push(state);
    if (code) log.codes.push(code);
  },
  onEvent: (event, raw) => log.events.push({ event, raw }),
});
</script>`;

const SITE = {
  models: [
    { label: 'catalog.book', verboseName: 'book' },
    { label: 'catalog.author', verboseName: 'author' },
    { label: 'shop.order', verboseName: 'order' },
  ],
  groups: [{ name: 'Shop staff', permissions: ['shop.change_order'] }],
  users: [
    { username: 'alice', permissions: ['catalog.view_book'] },
    { username: 'bob', groups: ['Shop staff'] },
    { username: 'carol', permissions: ['catalog.view_book'] },
  ],
} as const;

describe('sidecast/client in Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecast-browser-'));
  const databaseFile = join(dir, 'django.sqlite3');
  const django = loadDjangoSettings({
    DJANGO_SECRET_KEY: randomBytes(24).toString('hex'),
    SESAME_MAX_AGE: '30',
  });
  let site: SiteIds;
  /**
   * Mints tokens the way the Django project would, from its own copy of the database: revoking a
   * user below changes only sidecast's copy, so the tokens keep coming and keep being refused.
   */
  let issuer: SesameAuthenticator;
  let app: Sidecast;
  let browser: Browser;
  const clientDir = builtClient();
  const modules = serveClientModules(clientDir);

  function page(request: IncomingMessage, response: ServerResponse): boolean {
    const url = new URL(request.url ?? '/', 'http://test.invalid');
    if (url.pathname === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(TEST_PAGE);
      return true;
    }
    if (url.pathname === '/test/token') {
      issuer.mintToken(url.searchParams.get('user') ?? '').then(
        (token) => response.writeHead(200, { 'content-type': 'text/plain' }).end(token),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
      return true;
    }
    if (url.pathname === '/favicon.ico') {
      response.writeHead(204).end();
      return true;
    }
    return modules(request, response);
  }

  async function startServer(port: number): Promise<Sidecast> {
    const authenticator = await createSesameAuthenticator({
      databaseUrl: `sqlite://${databaseFile}`,
      django,
      scope: '',
    });
    return startTestServer(['--port', String(port), '--drain-seconds', '0.1'], {
      authenticator,
      page,
    });
  }

  const tabs: Page[] = [];
  async function openClient(user: string): Promise<{ tab: Page; errors: string[] }> {
    const tab = await browser.newPage();
    tabs.push(tab);
    const errors = collectPageErrors(tab);
    await tab.goto(`http://127.0.0.1:${app.port}/?user=${user}`);
    await tab.waitForFunction(() => window.log?.states.at(-1) === 'open');
    return { tab, errors };
  }

  const bookEvent = (object: string) =>
    pythonJson({ model: 'book', object, content_type_id: site.contentTypes.get('catalog.book') });
  const received = (tab: Page) => tab.evaluate(() => window.log.events);

  before(async () => {
    site = createDjangoSqlite(databaseFile, SITE);
    copyFileSync(databaseFile, join(dir, 'issuer.sqlite3'));
    issuer = await createSesameAuthenticator({
      databaseUrl: `sqlite://${join(dir, 'issuer.sqlite3')}`,
      django,
      scope: '',
    });
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
    await issuer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('receives, parsed, the events its user may see and none of the others', async () => {
    const alice = await openClient('alice');
    const bob = await openClient('bob');
    // "open" means the token went out; sidecast registers the connection once it checked it.
    await waitFor(() => app.server.liveConnectionCount === 2, 5000, 'two live connections');
    const order = pythonJson({
      model: 'order',
      object: 'Order #7',
      content_type_id: site.contentTypes.get('shop.order'),
    });
    const author = pythonJson({
      model: 'author',
      object: 'Calvino',
      content_type_id: site.contentTypes.get('catalog.author'),
    });
    const books = [bookEvent('Dune'), bookEvent('Café society'), bookEvent('last')];
    for (const payload of [books[0]!, order, author, books[1]!, order, books[2]!])
      await app.bus.publish(payload);

    await alice.tab.waitForFunction(() => window.log.events.length >= 3);
    const aliceEvents = await received(alice.tab);
    assert.deepEqual(
      aliceEvents.map((entry) => entry.raw),
      books,
      'alice gets the book events, byte for byte, and nothing else',
    );
    assert.deepEqual(aliceEvents[1]!.event, {
      model: 'book',
      object: 'Café society',
      content_type_id: site.contentTypes.get('catalog.book'),
    });
    await bob.tab.waitForFunction(() => window.log.events.length >= 2);
    assert.deepEqual(
      (await received(bob.tab)).map((entry) => entry.raw),
      [order, order],
    );
    assert.deepEqual([...alice.errors, ...bob.errors], []);
  });

  it('survives a sidecast restart by reconnecting with a fresh token', async () => {
    const alice = await openClient('alice');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'alice live');
    const before = await alice.tab.evaluate(() => ({ ...window.log }));
    assert.equal(before.tokens, 1);

    const port = app.port;
    await app.shutdown();
    await alice.tab.waitForFunction(() => window.log.states.includes('reconnecting'));
    app = await startServer(port);
    await waitFor(
      () => app.server.liveConnectionCount === 1,
      10_000,
      'alice back on the new server',
    );
    await app.bus.publish(bookEvent('after the restart'));
    await alice.tab.waitForFunction(() => window.log.events.length === 1);

    const log = await alice.tab.evaluate(() => window.log);
    assert.equal(log.events[0]!.event.object, 'after the restart');
    assert.ok(log.tokens >= 2, `getToken() was called again (${log.tokens} calls)`);
    assert.equal(log.tokens, log.sockets - countRefused(log), 'one token per opened socket');
    assert.equal(log.states.at(-1), 'open');
    assert.deepEqual(alice.errors, []);
  });

  it('stops as unauthorized once the credentials are revoked, and stays stopped', async () => {
    const alice = await openClient('alice');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'alice live');
    const db = new Database(databaseFile);
    db.prepare('UPDATE auth_user SET password = ? WHERE username = ?').run(
      unusablePassword(),
      'alice',
    );
    db.close();
    // The live connection keeps its permissions; the revocation bites on the next connection.
    const port = app.port;
    await app.shutdown();
    app = await startServer(port);
    await alice.tab.waitForFunction(() => window.log.states.at(-1) === 'unauthorized', null, {
      timeout: 15_000,
    });
    const stopped = await alice.tab.evaluate(() => ({ ...window.log }));
    // The drain (1001) sent it back; there one token was refused and so was the fresh one.
    assert.ok(stopped.codes.includes(1001));
    assert.deepEqual(
      stopped.codes.filter((code) => code === 1011),
      [1011, 1011],
      'exactly two refused tokens',
    );
    assert.deepEqual(stopped.codes.slice(-2), [1011, 1011]);
    assert.deepEqual(stopped.states.slice(-3), ['connecting', 'open', 'unauthorized']);
    assert.equal(stopped.tokens, 3, 'the first token, the refused one and one fresh retry');

    // Wait past the largest backoff (1 s) and then some: nothing may knock on the server again.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const later = await alice.tab.evaluate(() => ({ ...window.log }));
    assert.equal(later.sockets, stopped.sockets, 'no connection attempt after unauthorized');
    assert.equal(later.tokens, stopped.tokens, 'no token asked for after unauthorized');
    assert.equal(app.server.connectionCount, 0);
    assert.deepEqual(alice.errors, []);
  });

  it('is closed 1008 access revoked while open, tries one fresh token, and stops', async () => {
    const carol = await openClient('carol');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'carol live');
    const db = new Database(databaseFile);
    db.prepare('UPDATE auth_user SET password = ? WHERE username = ?').run(
      unusablePassword(),
      'carol',
    );
    db.close();
    // What Django's signals would say after the password change committed.
    const pk = site.users.get('carol')!;
    await app.bus.control.publish(JSON.stringify({ type: 'users', ids: [String(pk)] }));
    await carol.tab.waitForFunction(() => window.log.states.at(-1) === 'unauthorized', null, {
      timeout: 15_000,
    });
    const stopped = await carol.tab.evaluate(() => ({ ...window.log }));
    assert.deepEqual(stopped.codes, [1008, 1011], 'revoked, then the fresh token refused');
    assert.deepEqual(stopped.states.slice(0, 2), ['connecting', 'open']);
    assert.deepEqual(stopped.states.slice(-3), ['connecting', 'open', 'unauthorized']);
    assert.equal(stopped.tokens, 2, 'the first token and one fresh retry');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const later = await carol.tab.evaluate(() => ({ ...window.log }));
    assert.equal(later.sockets, stopped.sockets, 'no connection attempt after unauthorized');
    assert.equal(await counted(app, 'credentials_changed'), 1);
    assert.deepEqual(carol.errors, []);
  });
});

async function counted(app: Sidecast, reason: string): Promise<number> {
  const { values } = await app.metrics.revocations.get();
  return values.find((value) => value.labels.reason === reason)?.value ?? 0;
}

/** Sockets that never opened (the server was down) asked for no token. */
function countRefused(log: PageLog): number {
  let refused = 0;
  for (let i = 1; i < log.states.length; i++) {
    if (log.states[i - 1] === 'connecting' && log.states[i] === 'reconnecting') refused++;
  }
  return refused;
}
