/**
 * sidecast --auth session with a real browser: a user logs into examples/django through the
 * admin's login form, then a page that sends sidecast nothing (its /live/session/) connects with
 * the session cookie alone and receives the admin actions the user may see. After logging out,
 * and separately after a password change, a new connection from the same browser is refused.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Sidecast } from '../../src/app.js';
import { loadDjangoSettings } from '../../src/config.js';
import { collectPageErrors, launchChromium, logIntoDjangoAdmin } from '../support/browser.js';
import { createDjangoSite, runserver, type DjangoSite } from '../support/django.js';
import { freePort } from '../support/ports.js';
import { startTestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const READER = { username: 'reader', password: 'correct horse battery staple' };

describe('the session cookie page of the example Django project, in Chromium', () => {
  let site: DjangoSite;
  let sidecast: Sidecast;
  let django: { url: string; child: ChildProcess };
  let browser: Browser;

  before(async () => {
    site = await createDjangoSite({ dialect: 'sqlite' });
    await site.driver.createUser({
      ...READER,
      isStaff: true,
      perms: ['catalog.view_book'],
    });
    // The page's origin is known before Django starts: its port is picked first.
    const djangoPort = await freePort();
    sidecast = await startTestServer(
      [
        ...['--bus', 'redis', '--redis', site.redisUrl, '--channel', site.channel],
        ...['--django-db', site.dbUrl, '--auth', 'session'],
        ...['--allowed-origins', `http://127.0.0.1:${djangoPort}`],
      ],
      { django: loadDjangoSettings(site.env) },
    );
    django = await runserver(site, sidecast.url, djangoPort);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    django?.child.kill('SIGTERM');
    await sidecast?.close();
    await site?.close();
  });

  const logIn = (page: Page) => logIntoDjangoAdmin(page, django.url, '/live/session/', READER);

  const state = (page: Page) => page.textContent('#sidecast-state');

  async function expectRefused(page: Page): Promise<void> {
    await page.goto(`${django.url}/live/session/`);
    await page.waitForFunction(() =>
      document.getElementById('sidecast-state')?.textContent?.startsWith('closed'),
    );
    assert.equal(await state(page), 'closed 1011 authentication failed');
  }

  it('connects with the cookie alone, receives its events, and is refused once logged out', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = collectPageErrors(page);
    await logIn(page);
    await waitFor(
      () => sidecast.server.liveConnectionCount === 1,
      10_000,
      'the page authenticated',
    );

    await site.driver.adminAddBook({ author: 'Ursula', title: 'The Dispossessed', year: 1974 });
    await page.waitForSelector('#sidecast-events li');
    const items = await page.$$eval('#sidecast-events li', (lis) =>
      lis.map((li) => li.textContent),
    );
    // The author event went first on the same channel: had it been sent, it would be here too.
    assert.deepEqual(items, ['admin · book “The Dispossessed”: Added.']);

    // Log out through the admin's own form, as a user would.
    await page.goto(`${django.url}/admin/`);
    await Promise.all([page.waitForURL(/logout/), page.click('#logout-form button')]);
    await expectRefused(page);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('is refused after a password change', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await logIn(page);
    await page.waitForFunction(
      () => document.getElementById('sidecast-state')?.textContent === 'open',
    );
    await waitFor(
      () => sidecast.server.liveConnectionCount === 1,
      10_000,
      'the page authenticated',
    );
    await site.driver.setPassword({ username: 'reader', password: 'a new password' });
    await expectRefused(page);
    await context.close();
  });
});
