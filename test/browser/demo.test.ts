/**
 * `sidecast demo` end to end: its page in real Chromium (one column per chosen user, each a real
 * sidecast/client connection) and the command itself, started and stopped with Ctrl-C.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startDemo, type Demo } from '../../src/demo/demo.js';
import { pythonJson, type Action } from '../../src/demo/scenario.js';
import {
  artifactPath,
  builtClient,
  collectPageErrors,
  launchChromium,
} from '../support/browser.js';
import { startCli } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

/** Who may see what, from the demo's permissions (superuser, view_book, change_order via a group). */
const ALLOWED: Record<string, readonly string[]> = {
  admin: ['auth.group', 'auth.user', 'catalog.author', 'catalog.book', 'shop.order'],
  alice: ['catalog.book'],
  bob: ['shop.order'],
  carol: [],
};
const USERS = Object.keys(ALLOWED);

interface Shown {
  readonly raws: string[];
  readonly state: string;
}

/** What each column shows, oldest event first. */
async function columns(page: Page): Promise<Record<string, Shown>> {
  return page.$$eval('.column', (sections) =>
    Object.fromEntries(
      sections.map((section) => [
        section.getAttribute('data-user') ?? '',
        {
          state: section.getAttribute('data-state') ?? '',
          raws: [...section.querySelectorAll('li')].map((li) => li.dataset.raw ?? '').reverse(),
        },
      ]),
    ),
  );
}

function contentTypeIds(demo: Demo, user: string): number[] {
  return ALLOWED[user]!.map((label) => demo.site.contentTypes.get(label)!);
}

describe('sidecast demo page in Chromium', () => {
  const clientDir = builtClient();
  let browser: Browser;
  const demos: Demo[] = [];

  async function openDemo(intervalMs: number): Promise<Demo> {
    const demo = await startDemo({
      host: '127.0.0.1',
      port: 0,
      intervalMs,
      logLevel: 'silent',
      clientDir,
    });
    demos.push(demo);
    return demo;
  }

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    for (const demo of demos) await demo.stop();
  });

  it('shows each chosen user exactly the events that user may see', async () => {
    const demo = await openDemo(0);
    const page = await browser.newPage({ viewport: { width: 1320, height: 860 } });
    const errors = collectPageErrors(page);
    await page.goto(demo.url);
    await page.waitForSelector('body[data-ready="true"]');
    for (const user of USERS) await page.click(`button[data-user="${user}"]`);
    await page.waitForFunction(
      (count) => document.querySelectorAll('.column[data-state="open"]').length === count,
      USERS.length,
    );
    await waitFor(
      () => demo.sidecast.server.liveConnectionCount === USERS.length,
      5000,
      'every column authenticated',
    );
    assert.equal(new URL(page.url()).hash, `#${USERS.join(',')}`);

    const published: { raw: string; contentTypeId: number }[] = [];
    const actions: Action[] = ['add', 'change', 'delete'];
    for (const model of ALLOWED.admin!) {
      for (const action of actions) {
        const event = await demo.publish(action, model);
        published.push({ raw: pythonJson(event), contentTypeId: event.content_type_id });
      }
    }
    const total = published.length;
    await page.waitForFunction(
      (count) => document.querySelectorAll('.column[data-user="admin"] li').length === count,
      total,
    );
    const shown = await columns(page);
    for (const user of USERS) {
      const allowed = contentTypeIds(demo, user);
      assert.deepEqual(
        shown[user]!.raws,
        published
          .filter((event) => allowed.includes(event.contentTypeId))
          .map((event) => event.raw),
        `${user} sees exactly the events on ${ALLOWED[user]!.join(', ') || 'nothing'}`,
      );
      assert.equal(shown[user]!.state, 'open');
    }
    assert.equal(shown.alice!.raws.length, 3);
    assert.equal(shown.bob!.raws.length, 3);
    assert.match(
      (await page.textContent('.column[data-user="admin"] .count')) ?? '',
      /^15 events$/,
    );
    assert.match(
      (await page.textContent('.column[data-user="carol"] ol')) ?? '',
      /^$/,
      'carol has nothing',
    );

    // A few more, so the picture has something to show, then the screenshot.
    for (const model of ['catalog.book', 'shop.order', 'catalog.book', 'auth.user'])
      await demo.publish('change', model);
    await page.waitForFunction(
      () => document.querySelectorAll('.column[data-user="admin"] li').length === 19,
    );
    await page.waitForTimeout(800); // let the arrival highlight fade
    await page.screenshot({ path: artifactPath('demo-page.png'), fullPage: true });

    // Removing a column closes its client.
    await page.click('button[data-user="carol"]');
    await waitFor(() => demo.sidecast.server.connectionCount === 3, 5000, 'carol disconnected');
    assert.equal(await page.$('.column[data-user="carol"]'), null);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('fills the columns from the simulated admin activity, each with only what it may see', async () => {
    const demo = await openDemo(60);
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${demo.url}#admin,alice,bob,carol`);
    await page.waitForFunction(
      () =>
        document.querySelectorAll('.column[data-user="admin"] li').length >= 12 &&
        document.querySelectorAll('.column[data-user="alice"] li').length >= 1 &&
        document.querySelectorAll('.column[data-user="bob"] li').length >= 1,
      null,
      { timeout: 30_000 },
    );
    const shown = await columns(page);
    const models = new Set<number>();
    for (const user of USERS) {
      const allowed = contentTypeIds(demo, user);
      for (const raw of shown[user]!.raws) {
        const event = JSON.parse(raw) as Record<string, unknown>;
        assert.ok(allowed.includes(event.content_type_id as number), `${user} got ${raw}`);
        assert.deepEqual(Object.keys(event), [
          'model',
          'object',
          'message',
          'timestamp',
          'user',
          'content_type_id',
          'object_id',
        ]);
        // Python json.dumps bytes, as Django's receiver publishes them.
        assert.match(raw, /^\{"model": "/);
        assert.doesNotMatch(raw, /[^\x20-\x7e]/);
        if (user === 'admin') models.add(event.content_type_id as number);
      }
    }
    assert.ok(models.size >= 3, `admin saw events on ${models.size} models`);
    assert.deepEqual(errors, []);
    await page.close();
  });
});

describe('sidecast demo command', () => {
  it('prints where to go, serves the page and tokens, and cleans up on Ctrl-C', async () => {
    builtClient(); // the command run from source serves dist/client
    const cli = startCli(['demo', '--port', '0', '--interval', '0.2']);
    try {
      await cli.waitForOutput('Press Ctrl-C to stop.', 20_000);
    } catch (error) {
      cli.child.kill('SIGKILL');
      throw error;
    }
    const output = cli.stdout();
    const url = /open (http:\/\/127\.0\.0\.1:\d+\/) in a browser/.exec(output)?.[1];
    const database = /Django database +(\S+)/.exec(output)?.[1];
    assert.ok(url && database, output);
    assert.ok(existsSync(database));
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /import \{ createClient \} from '\/client\/index\.js'/);
    const client = await fetch(new URL('/client/index.js', url));
    assert.equal(client.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const token = await fetch(new URL('/demo/token?user=alice', url));
    assert.equal(token.status, 200);
    assert.match(await token.text(), /^[\w-]{20,}$/);
    assert.equal((await fetch(new URL('/demo/token?user=mallory', url))).status, 404);

    cli.child.kill('SIGINT');
    const result = await cli.exited;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /stopped; temporary database removed/);
    assert.ok(!existsSync(dirname(database)), 'the temporary database is gone');
    assert.equal(result.stderr, '');
  });
});
