/**
 * django-sesame settings other than the defaults, each on a real Django site: sidecast, reading
 * the same environment as Django, accepts and refuses exactly the tokens Django does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createSesameAuthenticator,
  type SesameAuthenticator,
} from '../../src/auth/sesame/authenticator.js';
import { loadDjangoSettings } from '../../src/config.js';
import { isSidecastError } from '../../src/errors.js';
import {
  createDjangoSite,
  type DjangoDialect,
  type DjangoSite,
  type DjangoUserModel,
} from '../support/django.js';
import { tamper } from '../support/e2e.js';

interface Verdicts {
  django: string | null;
  sidecast: string | null;
}

interface Context {
  site: DjangoSite;
  /** An authenticator for the site's environment, changed by `overrides`. */
  authenticator: (overrides?: Record<string, string>) => Promise<SesameAuthenticator>;
  /** Who Django's get_user and sidecast say the token belongs to (null: refused). */
  verdicts: (token: string, authenticator?: SesameAuthenticator) => Promise<Verdicts>;
}

const both = (username: string | null): Verdicts => ({ django: username, sidecast: username });

interface SettingsCase {
  readonly name: string;
  readonly dialect: DjangoDialect;
  readonly userModel: DjangoUserModel;
  readonly sesame?: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly secretKey?: string;
  run(context: Context): Promise<void>;
}

const OLD_KEY = 'previous-secret-key-for-rotation';

const TOKEN_WITH_OLD_KEY = `from django.contrib.auth import get_user_model
from django.test import override_settings
from sesame.utils import get_token
user = get_user_model()._default_manager.get_by_natural_key(args["username"])
with override_settings(SECRET_KEY=args["key"], SECRET_KEY_FALLBACKS=[]):
    result = get_token(user)`;

const CASES: readonly SettingsCase[] = [
  {
    name: 'SESAME_MAX_AGE None: no timestamp, revoked by a password change',
    dialect: 'sqlite',
    userModel: 'auth.User',
    sesame: { MAX_AGE: 'None' },
    async run({ site: { driver }, verdicts }) {
      await driver.createUser({ username: 'ann', password: 'pw-one' });
      const token = await driver.getToken({ username: 'ann' });
      assert.equal(token.length, 19, '4-byte pk + 10-byte signature');
      assert.deepEqual(await verdicts(token), both('ann'));
      await driver.setPassword({ username: 'ann', password: 'pw-one' });
      assert.deepEqual(await verdicts(token), both(null));
    },
  },
  {
    name: 'SESAME_KEY and SESAME_SIGNATURE_SIZE 16',
    dialect: 'sqlite',
    userModel: 'accounts_big.BigUser',
    sesame: { KEY: 'rotate-2024-06', SIGNATURE_SIZE: '16' },
    async run({ site: { driver }, verdicts, authenticator }) {
      await driver.createUser({ username: 'bob' });
      const token = await driver.getToken({ username: 'bob' });
      assert.equal(token.length, 38, '8-byte pk + timestamp + 16-byte signature');
      assert.deepEqual(await verdicts(token), both('bob'));
      assert.deepEqual(await verdicts(tamper(token, -2)), both(null));
      const withoutKey = await authenticator({ SESAME_KEY: '' });
      assert.equal((await verdicts(token, withoutKey)).sidecast, null, 'SESAME_KEY counts');
    },
  },
  {
    name: 'SESAME_INVALIDATE_ON_EMAIL_CHANGE: an admin email change revokes tokens',
    dialect: 'postgres',
    userModel: 'accounts_uuid.UuidUser',
    sesame: { INVALIDATE_ON_EMAIL_CHANGE: 'True' },
    async run({ site: { driver }, verdicts }) {
      const { pk } = await driver.createUser({ username: 'cleo', email: 'cleo@example.com' });
      const token = await driver.getToken({ username: 'cleo' });
      assert.deepEqual(await verdicts(token), both('cleo'));
      await driver.adminChange({ model: 'accounts_uuid.UuidUser', pk, data: { first_name: 'C' } });
      assert.deepEqual(await verdicts(token), both('cleo'), 'other fields do not count');
      await driver.adminChange({
        model: 'accounts_uuid.UuidUser',
        pk,
        data: { email: 'Cleo@example.com' },
      });
      assert.deepEqual(await verdicts(token), both(null));
    },
  },
  {
    name: 'SESAME_INVALIDATE_ON_PASSWORD_CHANGE False: a new password keeps tokens valid',
    dialect: 'mysql',
    userModel: 'auth.User',
    sesame: { INVALIDATE_ON_PASSWORD_CHANGE: 'False' },
    async run({ site: { driver }, verdicts }) {
      await driver.createUser({ username: 'dora', password: 'pw-one' });
      const token = await driver.getToken({ username: 'dora' });
      await driver.setPassword({ username: 'dora', password: 'pw-two' });
      assert.deepEqual(await verdicts(token), both('dora'));
      await driver.setActive({ username: 'dora', active: false });
      assert.deepEqual(await verdicts(token), both(null));
    },
  },
  {
    name: 'SESAME_PRIMARY_KEY_FIELD username: a non-ASCII text key on MariaDB',
    dialect: 'mysql',
    userModel: 'accounts_big.BigUser',
    sesame: { PRIMARY_KEY_FIELD: 'username' },
    async run({ site: { driver }, verdicts }) {
      await driver.createUser({ username: 'zoë.ñandú@例え' });
      await driver.createUser({ username: 'eve' });
      const token = await driver.getToken({ username: 'zoë.ñandú@例え' });
      assert.deepEqual(await verdicts(token), both('zoë.ñandú@例え'));
      assert.deepEqual(await verdicts(await driver.getToken({ username: 'eve' })), both('eve'));
      assert.deepEqual(await verdicts(tamper(token, 3)), both(null));
    },
  },
  {
    name: 'SESAME_PACKER set explicitly: 8-byte keys for an AutoField',
    dialect: 'postgres',
    userModel: 'auth.User',
    sesame: { PACKER: 'sesame.packers.LongLongPacker' },
    async run({ site: { driver }, verdicts }) {
      await driver.createUser({ username: 'finn' });
      const token = await driver.getToken({ username: 'finn' });
      assert.equal(token.length, 30, '8-byte pk + timestamp + signature');
      assert.deepEqual(await verdicts(token), both('finn'));
    },
  },
  {
    name: 'DJANGO_SECRET_KEY_FALLBACKS: tokens signed with the previous key',
    dialect: 'sqlite',
    userModel: 'auth.User',
    env: { DJANGO_SECRET_KEY_FALLBACKS: OLD_KEY },
    async run({ site: { driver }, verdicts, authenticator }) {
      await driver.createUser({ username: 'gus' });
      const old = await driver.shell<string>(TOKEN_WITH_OLD_KEY, { username: 'gus', key: OLD_KEY });
      assert.deepEqual(await verdicts(old!), both('gus'));
      const unrotated = await authenticator({ DJANGO_SECRET_KEY_FALLBACKS: '' });
      assert.equal((await verdicts(old!, unrotated)).sidecast, null, 'only through the fallback');
      const stranger = await driver.shell<string>(TOKEN_WITH_OLD_KEY, {
        username: 'gus',
        key: 'some-other-key',
      });
      assert.deepEqual(await verdicts(stranger!), both(null));
    },
  },
];

for (const settingsCase of CASES) {
  const { name, dialect, userModel } = settingsCase;
  void describe(`${name} (${dialect}, ${userModel})`, () => {
    let site: DjangoSite;
    const opened: SesameAuthenticator[] = [];

    before(async () => {
      site = await createDjangoSite({
        dialect,
        userModel,
        ...(settingsCase.sesame ? { sesame: settingsCase.sesame } : {}),
        ...(settingsCase.env ? { env: settingsCase.env } : {}),
      });
    });
    after(async () => {
      await Promise.all(opened.map((authenticator) => authenticator.close()));
      await site?.close();
    });

    async function authenticator(overrides: Record<string, string> = {}) {
      const created = await createSesameAuthenticator({
        databaseUrl: site.dbUrl,
        django: loadDjangoSettings({ ...site.env, ...overrides }),
        scope: '',
      });
      opened.push(created);
      return created;
    }

    void test('sidecast and Django agree on every token', async () => {
      const standard = await authenticator();
      await settingsCase.run({
        site,
        authenticator,
        async verdicts(token, chosen = standard) {
          const django = await site.driver.getUser({ token });
          try {
            return {
              django,
              sidecast: (await chosen.authenticate({ token, headers: {} })).username,
            };
          } catch (error) {
            if (!isSidecastError(error, 'AUTH_FAILED')) throw error;
            return { django, sidecast: null };
          }
        },
      });
    });
  });
}
