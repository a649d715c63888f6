/**
 * `sidecast token` and `sidecast connect --as` against the real Django example project: the token
 * is the one sesame.utils.get_token makes at that second, django-sesame's own get_user accepts it,
 * and so does a sidecast server, which then forwards what the Django admin publishes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { runCli, startCli } from '../support/cli.js';
import {
  createDjangoSite,
  type DjangoDialect,
  type DjangoSite,
  type DjangoUserModel,
} from '../support/django.js';
import { connectClient } from '../support/client.js';
import { startSiteServer } from '../support/e2e.js';
import { waitFor } from '../support/wait.js';

/** get_token(user, scope) with time.time() set to each second of [first, last]. */
const TOKENS_AT_EACH_SECOND = `
from unittest import mock
from django.contrib.auth import get_user_model
from sesame.utils import get_token

User = get_user_model()
user = User.objects.get(**{User.USERNAME_FIELD: args["username"]})
result = []
for second in range(args["first"], args["last"] + 1):
    with mock.patch("time.time", return_value=second + 0.5):
        result.append(get_token(user, scope=args["scope"]))
`;

const SITES: {
  dialect: DjangoDialect;
  userModel: DjangoUserModel;
  sesame: Record<string, string>;
}[] = [
  // The guide's settings: 30-second tokens, which hold a timestamp.
  { dialect: 'sqlite', userModel: 'auth.User', sesame: {} },
  // No expiry, so no timestamp; a UUID primary key, so another packer.
  { dialect: 'postgres', userModel: 'accounts_uuid.UuidUser', sesame: { MAX_AGE: 'None' } },
];

const nowSeconds = () => Math.floor(Date.now() / 1000);

it('sidecast token --help lists every option with its default and environment variable', async () => {
  const result = await runCli(['token', '--help']);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^Usage: sidecast token \[OPTIONS\] USERNAME\n/);
  assert.match(result.stdout, /--django-db URL .*\[default: required; env SIDECAST_DJANGO_DB\]/);
  assert.match(result.stdout, /--scope SCOPE .*\[default: ""; env SIDECAST_SCOPE\]/);
  assert.match(result.stdout, /DJANGO_SECRET_KEY \(required\)/);
  assert.match(result.stdout, /SESAME_MAX_AGE/);
});

for (const { dialect, userModel, sesame } of SITES) {
  describe(`sidecast token on ${dialect} with ${userModel}`, () => {
    let site: DjangoSite;

    before(async () => {
      site = await createDjangoSite({ dialect, userModel, sesame });
      await site.driver.createUser({ username: 'alice', perms: ['catalog.view_author'] });
      await site.driver.createUser({ username: 'bob', isActive: false });
    });
    after(() => site?.close());

    /** Runs `sidecast token` with the site's settings; returns the token and the seconds around it. */
    async function cliToken(args: string[], env: Record<string, string> = {}) {
      const first = nowSeconds();
      const result = await runCli(['token', ...args], { env: { ...site.env, ...env } });
      const last = nowSeconds();
      assert.equal(result.stderr, '');
      assert.equal(result.code, 0);
      assert.match(result.stdout, /^[A-Za-z0-9_-]+\n$/);
      return { token: result.stdout.trimEnd(), first, last };
    }

    async function djangoTokens(username: string, scope: string, first: number, last: number) {
      return site.driver.shell<string[]>(TOKENS_AT_EACH_SECOND, { username, scope, first, last });
    }

    it('prints the token get_token makes at that second, which get_user accepts', async () => {
      const { token, first, last } = await cliToken(['alice']);
      // One second earlier too: with a timestamp in the token, each second gives another token,
      // which shows the clock mock took effect.
      const [earlier, ...expected] = await djangoTokens('alice', '', first - 1, last);
      if (sesame.MAX_AGE !== 'None')
        assert.equal(new Set([earlier, ...expected]).size, last - first + 2);
      assert.ok(expected.includes(token), `${token} is not one of ${expected.join(', ')}`);
      assert.equal(await site.driver.getUser({ token }), 'alice');
      if (sesame.MAX_AGE === 'None')
        assert.equal(token, await site.driver.getToken({ username: 'alice' }));
    });

    it('makes scoped tokens with --scope or SIDECAST_SCOPE', async () => {
      const fromFlag = await cliToken(['--scope', 'room:1', 'alice']);
      const fromEnv = await cliToken(['alice'], { SIDECAST_SCOPE: 'room:1' });
      for (const { token, first, last } of [fromFlag, fromEnv]) {
        assert.ok((await djangoTokens('alice', 'room:1', first, last)).includes(token));
        assert.equal(await site.driver.getUser({ token, scope: 'room:1' }), 'alice');
        assert.equal(await site.driver.getUser({ token }), null);
      }
    });

    it('refuses unknown and inactive users with exit code 1', async () => {
      for (const [username, message] of [
        ['nobody', 'no user named "nobody"'],
        ['bob', 'user "bob" is inactive'],
      ]) {
        const result = await runCli(['token', username!], { env: site.env });
        assert.deepEqual(result, { code: 1, stdout: '', stderr: `sidecast: ${message}\n` });
      }
    });

    it('says which setting is missing', async () => {
      const noSecret = Object.fromEntries(
        Object.entries(site.env).filter(([name]) => name !== 'DJANGO_SECRET_KEY'),
      );
      const cases: [Record<string, string>, string[], string][] = [
        [
          noSecret,
          ['alice'],
          'DJANGO_SECRET_KEY is not set: export the SECRET_KEY of your Django project',
        ],
        [
          { ...site.env, SIDECAST_DJANGO_DB: '' },
          ['alice'],
          'no Django database: pass --django-db URL or set SIDECAST_DJANGO_DB',
        ],
        [site.env, [], 'missing USERNAME (usage: sidecast token [OPTIONS] USERNAME)'],
        [site.env, ['--bus', 'redis', 'alice'], 'unknown option --bus (see --help)'],
      ];
      for (const [env, args, message] of cases) {
        const result = await runCli(['token', ...args], { env });
        assert.deepEqual(result, { code: 2, stdout: '', stderr: `sidecast: ${message}\n` });
      }
    });

    describe('accepted by sidecast', () => {
      let app: Sidecast;
      before(async () => {
        app = await startSiteServer(site);
      });
      after(() => app?.close());

      it('authenticates a client that sends the printed token', async () => {
        const { token } = await cliToken(['alice']);
        const client = await connectClient(app.url, token);
        await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'authentication');
        await site.driver.adminAdd({ model: 'catalog.author', data: { name: 'Ada' } });
        const [frame] = await client.waitForFrames(1);
        assert.equal((JSON.parse(frame!.toString()) as { object: string }).object, 'Ada');
        client.ws.close();
        await waitFor(() => app.server.connectionCount === 0, 5000, 'the client to leave');
      });

      it('connect --as mints a token and receives what the admin publishes', async () => {
        const cli = startCli(['connect', '--as', 'alice', app.url], { env: site.env });
        await cli.waitForOutput(`Connected to ${app.url}.\n`, 20_000);
        await waitFor(() => app.server.liveConnectionCount === 1, 10_000, 'authentication');
        await site.driver.adminAdd({ model: 'catalog.author', data: { name: 'Grace' } });
        await cli.waitForOutput('"Grace"');
        cli.end();
        const result = await cli.exited;
        const lines = result.stdout.trimEnd().split('\n');
        assert.equal(lines.length, 3, result.stdout);
        assert.equal(lines[0], `Connected to ${app.url}.`);
        assert.match(lines[1]!, /^< \{.*"object": "Grace".*\}$/);
        assert.equal(lines[2], 'Connection closed: 1000 (OK).');
        assert.equal(result.code, 0);
      });

      it('connect --as refuses an inactive user before connecting', async () => {
        const result = await runCli(['connect', '--as', 'bob', app.url], { env: site.env });
        assert.deepEqual(result, {
          code: 1,
          stdout: '',
          stderr: 'sidecast: user "bob" is inactive\n',
        });
      });
    });
  });
}
