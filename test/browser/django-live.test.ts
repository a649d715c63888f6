/**
 * The example Django project's /live/ page in Chromium: a user logs in through the admin's login
 * form, the page (django-sidecast's {% sidecast_notifications %} and {% sidecast_connect %})
 * connects to sidecast with the token Django rendered into it, admin actions arrive over Redis,
 * and after a sidecast restart the page fetches a fresh token from the package's token view.
 * Needs Redis and Python (the project's virtualenv is built on first use); fails without them.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Sidecast } from '../../src/app.js';
import { loadDjangoSettings } from '../../src/config.js';
import { collectPageErrors, launchChromium, logIntoDjangoAdmin } from '../support/browser.js';
import { createDjangoSite, runserver, type DjangoSite } from '../support/django.js';
import { startTestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const READER = { username: 'reader', password: 'correct horse battery staple' };

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
    site = await createDjangoSite({ dialect: 'sqlite' });
    await site.driver.createUser({
      ...READER,
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

  async function logIn(): Promise<{ page: Page; errors: string[]; tokenRequests: () => number }> {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    let tokenRequests = 0;
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/sidecast/token/') tokenRequests++;
    });
    await logIntoDjangoAdmin(page, django.url, '/live/', READER);
    return { page, errors, tokenRequests: () => tokenRequests };
  }

  const items = (page: Page) =>
    page.$$eval('#sidecast-events li', (lis) => lis.map((li) => li.textContent ?? ''));

  it('shows the admin actions the user may see, and reconnects with a token from the view', async () => {
    const { page, errors, tokenRequests } = await logIn();
    await page.waitForFunction(
      () => document.getElementById('sidecast-state')?.textContent === 'open',
    );
    await waitFor(() => sidecast.server.liveConnectionCount === 1, 5000, 'the page authenticated');
    assert.equal(tokenRequests(), 0, 'the first token came with the page');

    await site.driver.adminAddBook({
      author: 'Italo Calvino',
      title: 'Invisible Cities',
      year: 1972,
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
    assert.ok(tokenRequests() >= 1, 'the reconnection fetched a fresh token from the view');
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
