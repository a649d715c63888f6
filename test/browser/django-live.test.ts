/**
 * The example Django project's /live/ page in Chromium: a user logs in through the admin's login
 * form, the page connects to sidecast with the token Django rendered into it, admin actions arrive
 * over Redis, and after a sidecast restart the page fetches a fresh token from the same view.
 * Needs Redis and Python (the project's virtualenv is built on first use); fails without them.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Sidecast } from '../../src/app.js';
import { loadDjangoSettings } from '../../src/config.js';
import { spawnTracked } from '../support/children.js';
import { builtClient, collectPageErrors, launchChromium } from '../support/browser.js';
import {
  createDjangoSite,
  DJANGO_PROJECT_DIR,
  ensureDjangoVenv,
  type DjangoSite,
} from '../support/django.js';
import { freePort } from '../support/ports.js';
import { startTestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const PASSWORD = 'correct horse battery staple';

/** `manage.py runserver` with the site's settings, resolved once it answers HTTP. */
async function runserver(
  site: DjangoSite,
  sidecastUrl: string,
): Promise<{ url: string; child: ChildProcess }> {
  const python = await ensureDjangoVenv();
  const port = await freePort();
  const inherited = Object.entries(process.env).filter(
    ([key]) => !/^(DJANGO_|SESAME_|SIDECAST_)/.test(key),
  );
  const child = spawnTracked(
    python,
    ['manage.py', 'runserver', `127.0.0.1:${port}`, '--noreload'],
    {
      cwd: DJANGO_PROJECT_DIR,
      env: { ...Object.fromEntries(inherited), ...site.env, SIDECAST_URL: sidecastUrl },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`runserver exited:\n${stderr}`);
    const answer = await fetch(`${url}/admin/login/`).catch(() => undefined);
    if (answer?.ok) break;
    if (Date.now() > deadline) throw new Error(`runserver did not answer:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { url, child };
}

describe('the example Django project live page', () => {
  let site: DjangoSite;
  let sidecast: Sidecast;
  let django: { url: string; child: ChildProcess };
  let browser: Browser;

  function startSidecast(port: number): Promise<Sidecast> {
    return startTestServer(
      [
        ...['--port', String(port), '--bus', 'redis', '--redis', site.redisUrl],
        ...['--channel', site.channel, '--django-db', site.dbUrl, '--drain-seconds', '0.1'],
      ],
      { django: loadDjangoSettings(site.env) },
    );
  }

  before(async () => {
    builtClient(); // live/static/sidecast points at dist/client
    site = await createDjangoSite({ dialect: 'sqlite' });
    await site.driver.createUser({
      username: 'reader',
      password: PASSWORD,
      isStaff: true,
      perms: ['catalog.view_book'],
    });
    sidecast = await startSidecast(0);
    django = await runserver(site, sidecast.url);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    django?.child.kill('SIGTERM');
    await sidecast?.close();
    await site?.close();
  });

  async function logIn(): Promise<{ page: Page; errors: string[]; tokenPages: () => number }> {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    let livePageLoads = 0;
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/live/') livePageLoads++;
    });
    await page.goto(`${django.url}/admin/login/?next=/live/`);
    await page.fill('#id_username', 'reader');
    await page.fill('#id_password', PASSWORD);
    await Promise.all([page.waitForURL(`${django.url}/live/`), page.click('input[type="submit"]')]);
    return { page, errors, tokenPages: () => livePageLoads };
  }

  const items = (page: Page) =>
    page.$$eval('#sidecast-events li', (lis) => lis.map((li) => li.textContent ?? ''));

  it('shows the admin actions the user may see, and reconnects with a token from the view', async () => {
    const { page, errors, tokenPages } = await logIn();
    await page.waitForFunction(
      () => document.getElementById('sidecast-state')?.textContent === 'open',
    );
    await waitFor(() => sidecast.server.liveConnectionCount === 1, 5000, 'the page authenticated');
    assert.equal(tokenPages(), 1, 'the first token came with the page');

    const author = await site.driver.adminAdd({
      model: 'catalog.author',
      data: { name: 'Italo Calvino' },
    });
    await site.driver.adminAdd({
      model: 'catalog.book',
      data: { title: 'Invisible Cities', author, year: 1972 },
    });
    await page.waitForSelector('#sidecast-events li');
    const first = await items(page);
    // The author event went first on the same channel: had it been sent, it would be here too.
    assert.equal(first.length, 1, JSON.stringify(first));
    assert.match(first[0]!, /admin · book “Invisible Cities”: Added\.$/);

    const port = sidecast.port;
    await sidecast.shutdown();
    sidecast = await startSidecast(port);
    await waitFor(() => sidecast.server.liveConnectionCount === 1, 15_000, 'the page reconnected');
    assert.ok(tokenPages() >= 2, 'the reconnection fetched a fresh token from /live/');
    assert.equal(await page.textContent('#sidecast-state'), 'open');

    const book = await site.driver.shell<string>(
      'from catalog.models import Book\nresult = str(Book.objects.get().pk)',
    );
    await site.driver.adminChange({ model: 'catalog.book', pk: book, data: { year: 1974 } });
    await page.waitForFunction(() => document.querySelectorAll('#sidecast-events li').length === 2);
    assert.match((await items(page))[0]!, /book “Invisible Cities”: Changed Year\.$/);
    assert.deepEqual(errors, []);
  });
});
