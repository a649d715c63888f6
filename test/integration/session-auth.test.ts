/**
 * --auth session against real Django sessions: logins made by Django's own test client on each
 * session engine (db on SQLite and MySQL, signed_cookies on SQLite, cached_db on PostgreSQL), then
 * connections that send nothing but the cookie. Logging out, a password change, an expired or
 * tampered session, an inactive user, a missing Origin: each refused with 1011. Logging out and a
 * password change also close the connections already open (1008).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { Sidecast } from '../../src/app.js';
import { closeOf, connectClient, type TestClient } from '../support/client.js';
import { createDjangoSite, type DjangoDialect, type DjangoSite } from '../support/django.js';
import { startSiteServer } from '../support/e2e.js';
import { AUTH_FAILED } from '../support/e2e-suite.js';
import { counted } from '../support/metrics.js';
import { waitFor } from '../support/wait.js';

const ORIGIN = 'http://app.example.test';

/** Django's test client logging in; returns the session cookie it was given. */
const LOGIN = `from django.conf import settings
from django.test import Client
client = Client()
assert client.login(username=args["username"], password=args["password"])
result = client.cookies[settings.SESSION_COOKIE_NAME].value`;

/** Logs the session out as django.contrib.auth.logout does; returns the cookie left behind. */
const LOGOUT = `from django.conf import settings
from django.test import Client
client = Client()
client.cookies[settings.SESSION_COOKIE_NAME] = args["cookie"]
client.logout()
name = settings.SESSION_COOKIE_NAME
result = client.cookies[name].value if name in client.cookies else ""`;

/** A login made a month ago, as the clock then would have signed and dated it. */
const OLD_LOGIN = `import time
from unittest import mock
from django.conf import settings
from django.test import Client
client = Client()
month_ago = time.time() - 30 * 86400
with mock.patch("django.core.signing.time.time", return_value=month_ago):
    assert client.login(username=args["username"], password=args["password"])
from django.contrib.sessions.models import Session
Session.objects.filter(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value).update(
    expire_date=Session.objects.model._meta.get_field("expire_date").to_python("2000-01-01T00:00:00Z")
)
result = client.cookies[settings.SESSION_COOKIE_NAME].value`;

/** What Django's get_user says of a request carrying this cookie. */
const DJANGO_USER = `from django.conf import settings
from django.contrib.auth import get_user
from django.test import RequestFactory
from importlib import import_module
request = RequestFactory().get("/")
request.session = import_module(settings.SESSION_ENGINE).SessionStore(args["cookie"])
user = get_user(request)
result = user.get_username() if user.is_authenticated else None`;

const ENGINES: readonly { engine: string; dialect: DjangoDialect }[] = [
  { engine: 'db', dialect: 'sqlite' },
  { engine: 'db', dialect: 'mysql' },
  { engine: 'signed_cookies', dialect: 'sqlite' },
  { engine: 'cached_db', dialect: 'postgres' },
];

for (const { engine, dialect } of ENGINES) {
  void describe(`--auth session, ${engine} engine on ${dialect}`, () => {
    let site: DjangoSite;
    let app: Sidecast;
    const clients: TestClient[] = [];
    const sessionEngine = `django.contrib.sessions.backends.${engine}`;

    before(async () => {
      site = await createDjangoSite({ dialect, env: { SESSION_ENGINE: sessionEngine } });
      app = await startSiteServer(site, ['--auth', 'session', '--allowed-origins', ORIGIN]);
      await site.driver.createUser({
        username: 'editor',
        password: 'editor-pass',
        perms: ['catalog.view_author'],
      });
      await site.driver.createUser({
        username: 'reader',
        password: 'reader-pass',
        perms: ['catalog.view_book'],
      });
    });
    after(async () => {
      for (const client of clients) client.ws.terminate();
      await app?.close();
      await site?.close();
    });

    async function connect(cookie: string | null, headers: Record<string, string> = {}) {
      const all = { Origin: ORIGIN, ...(cookie === null ? {} : { Cookie: cookie }), ...headers };
      const client = await connectClient(app.url, undefined, all);
      clients.push(client);
      return client;
    }

    const login = (username: string) =>
      site.driver.shell<string>(LOGIN, { username, password: `${username}-pass` });
    const djangoUser = (cookie: string) =>
      site.driver.shell<string | null>(DJANGO_USER, { cookie });

    async function assertRefused(cookie: string | null, headers: Record<string, string> = {}) {
      const client = await connect(cookie, headers);
      assert.deepEqual(await closeOf(client), AUTH_FAILED);
    }

    void test('a logged-in browser connects sending nothing and receives what it may see', async () => {
      const editorCookie = await login('editor');
      const readerCookie = await login('reader');
      assert.equal(await djangoUser(editorCookie), 'editor');
      const before = app.server.liveConnectionCount;
      const editor = await connect(`csrftoken=abc; sessionid=${editorCookie}`);
      const reader = await connect(`sessionid=${readerCookie}`);
      await waitFor(() => app.server.liveConnectionCount === before + 2, 10_000, 'both live');

      await site.driver.adminAdd({ model: 'catalog.author', data: { name: 'Grace Hopper' } });
      const [event] = await editor.waitForMessages(1);
      assert.equal(JSON.parse(event!).model, 'author');
      // The reader may see books only: give the event time to arrive, were it sent.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(reader.messages.length, 0);
    });

    void test('protocol v1: the first message may leave the token out', async () => {
      const cookie = await login('editor');
      const client = await connectClient(
        app.url,
        '{}',
        { Origin: ORIGIN, Cookie: `sessionid=${cookie}` },
        ['sidecast.v1'],
      );
      clients.push(client);
      const [welcome] = await client.waitForMessages(1);
      assert.equal(JSON.parse(welcome!).type, 'welcome');
    });

    void test('after logging out, the session no longer connects', async () => {
      const cookie = await login('editor');
      const left = await site.driver.shell<string>(LOGOUT, { cookie });
      assert.equal(await djangoUser(left), null);
      await assertRefused(`sessionid=${left}`);
      if (engine !== 'signed_cookies') {
        // The session is gone from the database: the cookie from before is worthless too.
        assert.equal(await djangoUser(cookie), null);
        await assertRefused(`sessionid=${cookie}`);
      }
    });

    void test(
      engine === 'signed_cookies'
        ? 'logging out leaves open connections as they are: nothing on the server ends the cookie'
        : 'logging out closes what that session opened with 1008, and only that',
      async () => {
        await site.driver.createUser({ username: 'leaver', password: 'leaver-pass' });
        const [leaving, staying] = [await login('leaver'), await login('leaver')];
        const before = app.server.liveConnectionCount;
        const tabs = [
          await connect(`sessionid=${leaving}`),
          await connect(`sessionid=${leaving}`),
          await connect(`sessionid=${staying}`),
        ];
        await waitFor(() => app.server.liveConnectionCount === before + 3, 10_000, 'all live');
        const made = performance.now();
        await site.driver.shell<string>(LOGOUT, { cookie: leaving });
        if (engine === 'signed_cookies') {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          for (const tab of tabs) assert.equal(tab.ws.readyState, WebSocket.OPEN);
          return;
        }
        // django-sidecast names the user on the control channel; this server re-checks on a
        // schedule only every 60 s, so the message alone can have done it.
        for (const tab of tabs.slice(0, 2)) {
          assert.deepEqual(await closeOf(tab, 5000), { code: 1008, reason: 'access revoked' });
        }
        const after = performance.now() - made;
        // The shell command itself starts a Python process: its time is in the figure.
        assert.ok(after < 5000, `closed ${Math.round(after)} ms after logging out began`);
        assert.equal(tabs[2]!.ws.readyState, WebSocket.OPEN, 'the other session stays');
        assert.equal(await counted(app.metrics.revocations, { reason: 'session_ended' }), 2);
      },
    );

    void test('after a password change, the session no longer connects, nor stays', async () => {
      await site.driver.createUser({ username: 'changer', password: 'changer-pass' });
      const cookie = await login('changer');
      const live = await connect(`sessionid=${cookie}`);
      await waitFor(() => app.server.liveConnectionCount > 0, 10_000, 'live before the change');
      await site.driver.setPassword({ username: 'changer', password: 'another-pass' });
      // The site's signals say so on the control channel: the open connection is revoked.
      assert.deepEqual(await closeOf(live, 5000), { code: 1008, reason: 'access revoked' });
      assert.equal(await djangoUser(cookie), null);
      await assertRefused(`sessionid=${cookie}`);
    });

    void test('an inactive user is refused', async () => {
      await site.driver.createUser({ username: 'sleeper', password: 'sleeper-pass' });
      const cookie = await login('sleeper');
      await site.driver.setActive({ username: 'sleeper', active: false });
      await assertRefused(`sessionid=${cookie}`);
    });

    void test('an expired session is refused', async () => {
      await site.driver.createUser({ username: 'oldtimer', password: 'oldtimer-pass' });
      const cookie = await site.driver.shell<string>(OLD_LOGIN, {
        username: 'oldtimer',
        password: 'oldtimer-pass',
      });
      await assertRefused(`sessionid=${cookie}`);
    });

    void test('a tampered or unknown session key, and no cookie at all, are refused', async () => {
      const cookie = await login('editor');
      const flipped = `${cookie.slice(0, -1)}${cookie.endsWith('a') ? 'b' : 'a'}`;
      assert.equal(await djangoUser(flipped), null);
      await assertRefused(`sessionid=${flipped}`);
      await assertRefused('sessionid=0123456789abcdef0123456789abcdef');
      await assertRefused(`sessionid=short`);
      await assertRefused(null);
      await assertRefused(`sessionid=${'x'.repeat(10_000)}`);
    });

    void test('a cookie without an Origin header is refused (cross-site hijacking)', async () => {
      const cookie = await login('editor');
      const client = await connectClient(app.url, undefined, { Cookie: `sessionid=${cookie}` });
      clients.push(client);
      assert.deepEqual(await closeOf(client), AUTH_FAILED);
    });

    void test('a page of another origin cannot even open the socket', async () => {
      const cookie = await login('editor');
      await assert.rejects(
        connectClient(app.url, undefined, {
          Origin: 'https://evil.example',
          Cookie: `sessionid=${cookie}`,
        }),
        /403/,
      );
    });
  });
}

void describe('--auth session with rotated secret keys', () => {
  let site: DjangoSite;
  before(async () => {
    site = await createDjangoSite({ dialect: 'sqlite', secretKey: 'the-old-secret-key' });
    await site.driver.createUser({ username: 'rotated', password: 'rotated-pass' });
  });
  after(() => site?.close());

  void test('a session signed under a key now in SECRET_KEY_FALLBACKS still connects', async () => {
    const cookie = await site.driver.shell<string>(LOGIN, {
      username: 'rotated',
      password: 'rotated-pass',
    });
    const rotated = {
      ...site,
      env: {
        ...site.env,
        DJANGO_SECRET_KEY: 'the-new-secret-key',
        DJANGO_SECRET_KEY_FALLBACKS: 'the-old-secret-key',
      },
    };
    const app = await startSiteServer(rotated, ['--auth', 'session', '--allowed-origins', ORIGIN]);
    const bare = { ...rotated, env: { ...rotated.env, DJANGO_SECRET_KEY_FALLBACKS: '' } };
    const strict = await startSiteServer(bare, ['--auth', 'session', '--allowed-origins', ORIGIN]);
    try {
      const headers = { Origin: ORIGIN, Cookie: `sessionid=${cookie}` };
      const client = await connectClient(app.url, undefined, headers);
      await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'live');
      client.ws.terminate();
      const refused = await connectClient(strict.url, undefined, headers);
      assert.deepEqual(await closeOf(refused), AUTH_FAILED);
    } finally {
      await app.close();
      await strict.close();
    }
  });

  void test('a session whose backend is not in AUTHENTICATION_BACKENDS is refused', async () => {
    const cookie = await site.driver.shell<string>(LOGIN, {
      username: 'rotated',
      password: 'rotated-pass',
    });
    const flags = ['--auth', 'session', '--allowed-origins', ORIGIN];
    const other = {
      ...site,
      env: { ...site.env, AUTHENTICATION_BACKENDS: 'sesame.backends.ModelBackend' },
    };
    const listed = {
      ...site,
      env: {
        ...site.env,
        AUTHENTICATION_BACKENDS: '["django.contrib.auth.backends.ModelBackend"]',
      },
    };
    const refusing = await startSiteServer(other, flags);
    const accepting = await startSiteServer(listed, flags);
    try {
      const headers = { Origin: ORIGIN, Cookie: `sessionid=${cookie}` };
      assert.deepEqual(
        await closeOf(await connectClient(refusing.url, undefined, headers)),
        AUTH_FAILED,
      );
      const client = await connectClient(accepting.url, undefined, headers);
      await waitFor(() => accepting.server.liveConnectionCount === 1, 10_000, 'live');
      client.ws.terminate();
    } finally {
      await refusing.close();
      await accepting.close();
    }
  });

  void test('--auth session,sesame: a cookie connects as it opens, a token without one', async () => {
    const cookie = await site.driver.shell<string>(LOGIN, {
      username: 'rotated',
      password: 'rotated-pass',
    });
    const app = await startSiteServer(site, [
      '--auth',
      'session,sesame',
      '--allowed-origins',
      ORIGIN,
    ]);
    try {
      const byCookie = await connectClient(app.url, undefined, {
        Origin: ORIGIN,
        Cookie: `sessionid=${cookie}`,
      });
      await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'the cookie live');
      const byToken = await connectClient(
        app.url,
        await site.driver.getToken({ username: 'rotated' }),
        {
          Origin: ORIGIN,
        },
      );
      await waitFor(() => app.server.liveConnectionCount === 2, 10_000, 'the token live');
      const neither = await connectClient(app.url, 'not-a-token', { Origin: ORIGIN });
      assert.deepEqual(await closeOf(neither), AUTH_FAILED);
      byCookie.ws.terminate();
      byToken.ws.terminate();
    } finally {
      await app.close();
    }
  });

  void test('start-up refuses the default and wildcard origins', async () => {
    for (const flags of [[], ['--allowed-origins', '*'], ['--allowed-origins', `${ORIGIN},*`]]) {
      await assert.rejects(
        startSiteServer(site, ['--auth', 'session', ...flags]),
        /--auth session needs --allowed-origins/,
      );
    }
  });
});
