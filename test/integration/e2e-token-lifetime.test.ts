/**
 * Token lifetimes end to end: SESAME_ONE_TIME (sidecast records the login in Django's database, so
 * the token is spent for Django too) and SESAME_MAX_AGE expiry in real time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sidecast } from '../../src/app.js';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { AUTH_FAILED } from '../support/e2e-suite.js';
import { closeOf, connectClient, type TestClient } from '../support/client.js';
import { startSiteServer } from '../support/e2e.js';
import { waitFor } from '../support/wait.js';

const LAST_LOGIN = `from django.contrib.auth import get_user_model
user = get_user_model()._default_manager.get_by_natural_key(args["username"])
result = None if user.last_login is None else user.last_login.isoformat()`;

const UTC = { USE_TZ: 'True' };
/** Naive local times: PostgreSQL converts to TIME_ZONE, MySQL and SQLite store the wall time. */
const PARIS = { USE_TZ: 'False', TIME_ZONE: 'Europe/Paris' };

const ONE_TIME_CASES = [
  { dialect: 'postgres', userModel: 'accounts_uuid.UuidUser', env: UTC },
  { dialect: 'mysql', userModel: 'accounts_big.BigUser', env: UTC },
  { dialect: 'sqlite', userModel: 'auth.User', env: UTC },
  { dialect: 'postgres', userModel: 'auth.User', env: PARIS },
  { dialect: 'mysql', userModel: 'auth.User', env: PARIS },
] as const;

/** The instant of a naive Europe/Paris wall time (an hour or two ahead of UTC). */
function parisTime(naive: string): number {
  const asUtc = Date.parse(`${naive}Z`);
  const offset = (instant: number) => {
    const wall = new Date(instant).toLocaleString('sv-SE', { timeZone: 'Europe/Paris' });
    return Date.parse(`${wall.replace(' ', 'T')}Z`) - instant;
  };
  return asUtc - offset(asUtc - offset(asUtc));
}

for (const { dialect, userModel, env } of ONE_TIME_CASES) {
  const zone = env.USE_TZ === 'True' ? 'USE_TZ' : 'naive Europe/Paris time';
  void describe(`SESAME_ONE_TIME on ${dialect} with ${userModel}, ${zone}`, () => {
    let site: DjangoSite;
    let app: Sidecast;
    const clients: TestClient[] = [];

    before(async () => {
      site = await createDjangoSite({ dialect, userModel, env, sesame: { ONE_TIME: 'True' } });
      app = await startSiteServer(site);
    });
    after(async () => {
      for (const client of clients) client.ws.terminate();
      await app?.close();
      await site?.close();
    });

    async function connect(token: string): Promise<TestClient> {
      const client = await connectClient(app.url, token);
      clients.push(client);
      return client;
    }

    async function liveWith(token: string, count: number): Promise<void> {
      await connect(token);
      await waitFor(() => app.server.liveConnectionCount === count, 10_000, `${count} live`);
    }

    void test('a token works once, and sidecast spends it for Django too', async () => {
      const { driver } = site;
      await driver.createUser({ username: 'once', password: 'first-pass' });
      assert.equal(await driver.shell(LAST_LOGIN, { username: 'once' }), null);

      const first = await driver.getToken({ username: 'once' });
      const startedAt = Date.now();
      await liveWith(first, 1);
      // sidecast wrote last_login, in the form Django reads back: aware UTC, or naive local.
      const lastLogin = await driver.shell<string>(LAST_LOGIN, { username: 'once' });
      const offset = env.USE_TZ === 'True' ? '\\+00:00' : '';
      assert.match(
        lastLogin ?? '',
        new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:]{8}(\\.\\d{6})?${offset}$`),
      );
      const writtenAt = env.USE_TZ === 'True' ? Date.parse(lastLogin!) : parisTime(lastLogin!);
      assert.ok(Math.abs(writtenAt - startedAt) < 60_000, `last_login ${lastLogin}`);

      assert.deepEqual(await closeOf(await connect(first)), AUTH_FAILED, 'second use');
      assert.equal(await driver.getUser({ token: first }), null, 'Django refuses it as well');

      // A token Django makes from the last_login sidecast wrote is one sidecast accepts.
      const second = await driver.getToken({ username: 'once' });
      await liveWith(second, 2);
      assert.deepEqual(await closeOf(await connect(second)), AUTH_FAILED);

      // And the other way round: Django spends a token, sidecast then refuses it.
      const third = await driver.getToken({ username: 'once' });
      assert.equal(await driver.getUser({ token: third }), 'once');
      assert.deepEqual(await closeOf(await connect(third)), AUTH_FAILED);
      const fourth = await driver.getToken({ username: 'once' });
      await liveWith(fourth, 3);
      assert.notEqual(await driver.shell(LAST_LOGIN, { username: 'once' }), lastLogin);
    });
  });
}

void describe('SESAME_MAX_AGE in real time', () => {
  let site: DjangoSite;
  let app: Sidecast;

  before(async () => {
    site = await createDjangoSite({ dialect: 'sqlite', sesame: { MAX_AGE: '3' } });
    app = await startSiteServer(site);
  });
  after(async () => {
    await app?.close();
    await site?.close();
  });

  void test('a token is accepted while fresh and refused once it is MAX_AGE old', async () => {
    const { driver } = site;
    await driver.createUser({ username: 'hasty', perms: ['catalog.view_book'] });
    const token = await driver.getToken({ username: 'hasty' });
    const fresh = await connectClient(app.url, token);
    await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'the fresh token live');
    fresh.ws.close();

    // Whole seconds count: created at t, the token is expired once int(now) - int(t) >= 3.
    await sleep(4000);
    assert.equal(await driver.getUser({ token }), null, 'Django considers it expired');
    assert.deepEqual(await closeOf(await connectClient(app.url, token)), AUTH_FAILED);
    const renewed = await driver.getToken({ username: 'hasty' });
    const client = await connectClient(app.url, renewed);
    await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'the renewed token live');
    client.ws.close();
  });
});
