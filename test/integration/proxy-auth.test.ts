/**
 * The Django proxy against the example project's real endpoints (live/sidecast_proxy.py under
 * manage.py runserver): a rule-based backend's permission reaches the client exactly as
 * user.has_perm answers it, where the native reader of the database sees nothing; Django
 * authenticates sesame tokens and session cookies for --auth proxy; a wrong secret is a refusal
 * and an unreachable Django a 1013.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { SERVE_OPTIONS, startSidecast, type Sidecast } from '../../src/app.js';
import { loadDjangoSettings, parseArgs } from '../../src/config.js';
import { closeOf, connectClient, type TestClient } from '../support/client.js';
import { createDjangoSite, runserver, type DjangoSite } from '../support/django.js';
import { AUTH_FAILED } from '../support/e2e-suite.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const SECRET = 'proxy-secret-for-the-tests';
const ORIGIN = 'http://app.example.test';

const LOGIN = `from django.conf import settings
from django.test import Client
client = Client()
assert client.login(username=args["username"], password=args["password"])
result = client.cookies[settings.SESSION_COOKIE_NAME].value`;

void describe('the Django proxy, against examples/django', () => {
  let site: DjangoSite;
  let django: { url: string; child: ChildProcess };
  const apps: Sidecast[] = [];
  const clients: TestClient[] = [];

  async function start(flags: string[], secret = SECRET): Promise<Sidecast> {
    const argv = ['--port', '0', '--django-db', site.dbUrl, '--redis', site.redisUrl];
    argv.push('--channel', site.channel, '--log-level', 'silent', ...flags);
    const app = await startSidecast({
      options: parseArgs(SERVE_OPTIONS, argv, { SIDECAST_PROXY_SECRET: secret }).options,
      django: loadDjangoSettings(site.env),
    });
    apps.push(app);
    return app;
  }

  async function connect(app: Sidecast, token?: string, headers: Record<string, string> = {}) {
    const client = await connectClient(app.url, token, headers);
    clients.push(client);
    return client;
  }

  before(async () => {
    site = await createDjangoSite({ dialect: 'sqlite', env: { SIDECAST_PROXY_SECRET: SECRET } });
    django = await runserver(site, 'ws://127.0.0.1:1/');
    await site.driver.createUser({
      username: 'librarian',
      password: 'librarian-pass',
      email: 'marian@library.example',
    });
  });
  after(async () => {
    for (const client of clients) client.ws.terminate();
    for (const app of apps) await app.close();
    django?.child.kill('SIGTERM');
    await site?.close();
  });

  const permissionsUrl = () => `${django.url}/live/sidecast/permissions/`;
  const authUrl = () => `${django.url}/live/sidecast/auth/`;

  void test("a custom backend's permission arrives as user.has_perm answers it", async () => {
    const book = await site.driver.contentTypeId({ appLabel: 'catalog', model: 'book' });
    // Django's own answer: the rule grants view on books, no permission row does.
    assert.deepEqual(await site.driver.getContentTypes({ username: 'librarian' }), [book]);
    const proxied = await start(['--permissions-url', permissionsUrl()]);
    const native = await start([]);
    const viaDjango = await connect(proxied, await site.driver.getToken({ username: 'librarian' }));
    const viaDb = await connect(native, await site.driver.getToken({ username: 'librarian' }));
    await waitFor(() => proxied.server.liveConnectionCount === 1, 10_000, 'proxied live');
    await waitFor(() => native.server.liveConnectionCount === 1, 10_000, 'native live');

    await site.driver.adminAddBook({ author: 'Borges', title: 'Ficciones', year: 1944 });
    const [event] = await viaDjango.waitForMessages(1);
    assert.equal(JSON.parse(event!).content_type_id, book);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(viaDjango.messages.length, 1, 'nothing about authors');
    assert.equal(viaDb.messages.length, 0, 'the database alone grants nothing');
  });

  void test('--auth proxy: Django authenticates sesame tokens and session cookies', async () => {
    const app = await start([
      ...['--auth', 'proxy', '--auth-url', authUrl(), '--permissions-url', permissionsUrl()],
      ...['--allowed-origins', ORIGIN],
    ]);
    const byToken = await connect(app, await site.driver.getToken({ username: 'librarian' }));
    const cookie = await site.driver.shell<string>(LOGIN, {
      username: 'librarian',
      password: 'librarian-pass',
    });
    const headers = { Origin: ORIGIN, Cookie: `sessionid=${cookie}` };
    // A cookie goes with protocol v1's tokenless first message; the guide's waits for a token.
    const byCookie = await connectClient(app.url, '{}', headers, ['sidecast.v1']);
    clients.push(byCookie);
    await waitFor(() => app.server.liveConnectionCount === 2, 10_000, 'both live');
    assert.equal(JSON.parse((await byCookie.waitForMessages(1))[0]!).type, 'welcome');

    const author = await site.driver.adminAdd({ model: 'catalog.author', data: { name: 'Eco' } });
    await site.driver.adminAdd({
      model: 'catalog.book',
      data: { title: 'The Name of the Rose', author, year: 1980 },
    });
    await byToken.waitForMessages(1);
    await byCookie.waitForMessages(2);

    assert.deepEqual(await closeOf(await connect(app, 'not-a-token')), AUTH_FAILED);
    const noOrigin = await connectClient(app.url, '{}', { Cookie: `sessionid=${cookie}` }, [
      'sidecast.v1',
    ]);
    clients.push(noOrigin);
    assert.deepEqual(await closeOf(noOrigin), AUTH_FAILED, 'no Origin: the cookie is not sent');
  });

  void test('a wrong secret is refused with 1011, an unreachable Django is 1013', async () => {
    const wrong = await start(['--permissions-url', permissionsUrl()], 'not-the-secret');
    const token = await site.driver.getToken({ username: 'librarian' });
    assert.deepEqual(await closeOf(await connect(wrong, token)), AUTH_FAILED);
    const closedPort = await freePort();
    const away = await start(['--permissions-url', `http://127.0.0.1:${closedPort}/`]);
    assert.deepEqual(await closeOf(await connect(away, token)), {
      code: 1013,
      reason: 'try again later',
    });
  });

  void test('start-up refuses a proxy without its secret or its URLs', async () => {
    await assert.rejects(start(['--permissions-url', permissionsUrl()], ''), /PROXY_SECRET/);
    await assert.rejects(start(['--auth', 'proxy', '--auth-url', authUrl()]), /--auth proxy needs/);
    await assert.rejects(start(['--auth-url', authUrl()]), /only read by --auth proxy/);
  });
});
