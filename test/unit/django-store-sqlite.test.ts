/**
 * The Django store on SQLite files built from the DDL Django itself produced
 * (`sqlite_schema_by_config` in test/fixtures/sesame_v2.json): permissions against the
 * recorded get_content_types() results, and every token case's user row read back as the ORM saw it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { sesameUserLookup } from '../../src/auth/sesame/settings.js';
import { isSidecastError } from '../../src/errors.js';
import { openDjangoDb, type DjangoDb } from '../../src/django/db.js';
import type { PkValue } from '../../src/django/fields.js';
import { createDjangoStore } from '../../src/django/store.js';
import { resolveUserModel } from '../../src/django/user-model.js';
import {
  djangoSettings,
  insertRows,
  loadVectors,
  permissionRows,
  type TokenCaseInputs,
} from '../support/django-vectors.js';

const vectors = loadVectors();
const workdir = mkdtempSync(join(tmpdir(), 'sidecast-django-'));
after(() => rmSync(workdir, { recursive: true, force: true }));

let files = 0;
/** A new SQLite file holding the tables and indexes of one vector configuration. */
async function databaseFor(config: string): Promise<DjangoDb> {
  const schema = vectors.sqlite_schema_by_config[config];
  assert.ok(schema, `no schema for ${config}`);
  const path = join(workdir, `${config}-${(files += 1)}.sqlite3`);
  const raw = new Database(path);
  const statements = Object.values(schema);
  // Tables before the indexes on them.
  for (const sql of statements.filter((s) => s.startsWith('CREATE TABLE'))) raw.exec(sql);
  for (const sql of statements.filter((s) => !s.startsWith('CREATE TABLE'))) raw.exec(sql);
  raw.close();
  return openDjangoDb(`sqlite://${path}`);
}

/** Counts round trips, to hold the store to its query budget. */
function counting(db: DjangoDb): { db: DjangoDb; queries: () => number } {
  let n = 0;
  return {
    db: {
      dialect: db.dialect,
      location: db.location,
      quote: (identifier) => db.quote(identifier),
      query: (sql, params) => {
        n += 1;
        return db.query(sql, params);
      },
      close: () => db.close(),
    },
    queries: () => n,
  };
}

void test('contentTypeIds equals get_content_types() for every fixture user', async () => {
  const fixture = vectors.permissions;
  const base = await databaseFor('A_auth_user_use_tz_true');
  await insertRows(base, permissionRows(fixture));
  const { db, queries } = counting(base);
  const settings = djangoSettings();
  const store = createDjangoStore(db, await resolveUserModel(db, settings), settings);
  try {
    assert.ok(fixture.users.length >= 8);
    for (const { user, get_content_types_result: expected } of fixture.users) {
      const found = await store.findUser(BigInt(user.id));
      assert.ok(found, `user ${user.id}`);
      assert.equal(found.username, user.username);
      assert.equal(found.isActive, user.is_active);
      assert.equal(found.isSuperuser, user.is_superuser);
      const ids = [...(await store.contentTypeIds(found))].sort((a, b) => a - b);
      assert.deepEqual(ids, expected, user.username);
      assert.deepEqual(await store.findUserByUsername(user.username), found);
    }

    // With the content types cached: one round trip for a superuser, two for anyone else,
    // one for an inactive user (no permission query at all).
    const budget: [string, number][] = [
      ['root', 1],
      ['mixed', 2],
      ['grouped', 2],
      ['inactive_with_perms', 1],
    ];
    for (const [username, expected] of budget) {
      const before = queries();
      const user = await store.findUserByUsername(username);
      assert.ok(user);
      await store.contentTypeIds(user);
      assert.equal(queries() - before, expected, username);
    }
    assert.equal(await store.findUser(999_999n), null);
    assert.equal(await store.findUserByUsername('nobody-at-all'), null);
  } finally {
    await store.close();
  }
});

void test('concurrent logins share one content type query', async () => {
  const base = await databaseFor('A_auth_user_use_tz_true');
  await insertRows(base, permissionRows(vectors.permissions));
  const { db, queries } = counting(base);
  const settings = djangoSettings();
  const store = createDjangoStore(db, await resolveUserModel(db, settings), settings);
  try {
    const root = await store.findUserByUsername('root');
    assert.ok(root);
    const before = queries();
    const results = await Promise.all(Array.from({ length: 50 }, () => store.contentTypeIds(root)));
    assert.equal(queries() - before, 1);
    for (const ids of results) assert.equal(ids.size, 14);
  } finally {
    await store.close();
  }
});

void test('a content type created after caching is found on the next miss', async () => {
  const db = await databaseFor('A_auth_user_use_tz_true');
  await insertRows(db, permissionRows(vectors.permissions));
  const settings = djangoSettings();
  const store = createDjangoStore(db, await resolveUserModel(db, settings), settings, {
    contentTypeRefreshMs: 0,
  });
  try {
    const direct = await store.findUserByUsername('direct');
    assert.ok(direct);
    assert.deepEqual([...(await store.contentTypeIds(direct))], [10]);
    await insertRows(db, [
      ['django_content_type', { id: 15, app_label: 'shop', model: 'refund' }],
      ['auth_permission', { id: 43, content_type_id: 15, codename: 'view_refund', name: 'r' }],
      ['auth_user_user_permissions', { user_id: direct.pk, permission_id: 43 }],
    ]);
    assert.deepEqual([...(await store.contentTypeIds(direct))].sort(), [10, 15]);
  } finally {
    await store.close();
  }
});

const CONFIGS: Record<string, string> = {
  'auth.User/true': 'A_auth_user_use_tz_true',
  'auth.User/false': 'B_auth_user_use_tz_false',
  'vecapp.BigAutoUser/true': 'C_bigautofield_user',
  'vecapp.UUIDUser/true': 'D_uuid_user',
  'vecapp.StrUser/true': 'E_charfield_user',
  'vecapp.AltKeyUser/true': 'F_altkey_user',
};

function pkValueOf(inputs: TokenCaseInputs): PkValue {
  const value = inputs.token_pk_value;
  return typeof value === 'number' ? BigInt(value) : value;
}

void test('every token case user reads back as the ORM returned it', async () => {
  const byConfig = new Map<string, TokenCaseInputs[]>();
  for (const { inputs } of vectors.token_cases) {
    const config = CONFIGS[`${inputs.AUTH_USER_MODEL}/${inputs.USE_TZ}`];
    assert.ok(config, inputs.AUTH_USER_MODEL);
    byConfig.set(config, [...(byConfig.get(config) ?? []), inputs]);
  }
  assert.equal(byConfig.size, 6);
  let checked = 0;
  for (const [config, cases] of byConfig) {
    const first = cases[0] as TokenCaseInputs;
    const db = await databaseFor(config);
    for (const inputs of cases) {
      const row = Object.fromEntries(
        Object.entries(inputs.user_row_as_stored_in_sqlite).map(([k, v]) => [k, v.value]),
      );
      await insertRows(db, [[inputs.user_model_table, row]]);
    }
    const settings = djangoSettings({
      authUserModel: first.AUTH_USER_MODEL,
      useTz: first.USE_TZ,
      sesame: {
        ...djangoSettings().sesame,
        primaryKeyField: first.sesame_effective.PRIMARY_KEY_FIELD,
      },
    });
    const model = await resolveUserModel(db, settings, sesameUserLookup(settings.sesame));
    assert.equal(model.table, first.user_model_table);
    assert.equal(model.lookupFieldType, first.pk_field_internal_type, config);
    const store = createDjangoStore(db, model, settings);
    try {
      for (const inputs of cases) {
        const row = inputs.user_row;
        const user = await store.findUser(pkValueOf(inputs));
        assert.ok(user, `${config} ${String(inputs.token_pk_value)}`);
        assert.deepEqual(user.lookup, pkValueOf(inputs));
        assert.equal(user.pk, String(row.id ?? row.username));
        assert.equal(user.username, row.username);
        assert.equal(user.password, row.password);
        assert.equal(user.email, row.email ?? null);
        assert.equal(user.lastLogin, row.last_login);
        assert.equal(user.isActive, row.is_active);
        assert.equal(user.isSuperuser, row.is_superuser ?? false);
        checked += 1;
      }
    } finally {
      await store.close();
    }
  }
  assert.equal(checked, vectors.token_cases.length);
});

void test('SQLite pk types: BigAutoField is told from AutoField by the referencing columns', async () => {
  const expected: [string, string, string][] = [
    ['A_auth_user_use_tz_true', 'auth.User', 'AutoField'],
    ['C_bigautofield_user', 'vecapp.BigAutoUser', 'BigAutoField'],
    ['D_uuid_user', 'vecapp.UUIDUser', 'UUIDField'],
    ['E_charfield_user', 'vecapp.StrUser', 'CharField'],
  ];
  for (const [config, authUserModel, fieldType] of expected) {
    const db = await databaseFor(config);
    try {
      const model = await resolveUserModel(db, djangoSettings({ authUserModel }));
      assert.equal(model.pkFieldType, fieldType, config);
    } finally {
      await db.close();
    }
  }
});

void test('a user model without PermissionsMixin has no superuser and no permissions', async () => {
  const db = await databaseFor('D_uuid_user');
  const settings = djangoSettings({ authUserModel: 'vecapp.UUIDUser' });
  const model = await resolveUserModel(db, settings);
  assert.equal(model.isSuperuserColumn, null);
  assert.equal(model.groupsTable, null);
  assert.equal(model.emailColumn, null);
  await insertRows(db, [
    ['vecapp_uuiduser', { id: 'ab'.repeat(16), password: 'x', username: 'u', is_active: true }],
  ]);
  const store = createDjangoStore(db, model, settings);
  try {
    const user = await store.findUser('abababab-abab-abab-abab-abababababab');
    assert.ok(user);
    assert.equal(user.pk, 'abababab-abab-abab-abab-abababababab');
    assert.equal(user.isSuperuser, false);
    assert.equal((await store.contentTypeIds(user)).size, 0);
    assert.equal(await store.findUser('not-a-uuid'), null);
    assert.equal(await store.findUser(5n), null);
  } finally {
    await store.close();
  }
});

void test('recordLogin writes what Django writes and findUser reads it back', async () => {
  const micros = 1717143342123456n; // 2024-05-31T08:15:42.123456Z
  const cases: [boolean, bigint | Date, string, string][] = [
    [true, micros, '2024-05-31 08:15:42.123456', '2024-05-31T08:15:42.123456+00:00'],
    [true, new Date(1717143342000), '2024-05-31 08:15:42', '2024-05-31T08:15:42+00:00'],
    // USE_TZ = False: naive local time in TIME_ZONE.
    [false, micros, '2024-05-31 10:15:42.123456', '2024-05-31T10:15:42.123456'],
  ];
  for (const [useTz, now, stored, iso] of cases) {
    const db = await databaseFor('A_auth_user_use_tz_true');
    await insertRows(db, permissionRows(vectors.permissions));
    const settings = djangoSettings({ useTz, timeZone: 'Europe/Paris' });
    const stamp = typeof now === 'bigint' ? now : BigInt(now.getTime()) * 1000n;
    const store = createDjangoStore(db, await resolveUserModel(db, settings), settings, {
      clock: () => stamp,
    });
    try {
      const user = await store.findUserByUsername('direct');
      assert.ok(user);
      assert.equal(user.lastLogin, null);
      assert.equal(await store.recordLogin(user), iso);
      const rows = await db.query<{ last_login: string }>(
        'SELECT last_login FROM auth_user WHERE id = ?',
        [BigInt(user.pk)],
      );
      assert.deepEqual(rows, [{ last_login: stored }]);
      assert.equal((await store.findUser(BigInt(user.pk)))?.lastLogin, iso);
      const other = await store.findUserByUsername('grouped');
      assert.equal(other?.lastLogin, null);
    } finally {
      await store.close();
    }
  }
});

void test('missing tables are DB_SCHEMA errors that say what to check', async () => {
  const path = join(workdir, 'empty.sqlite3');
  new Database(path).close();
  const db = await openDjangoDb(`sqlite://${path}`);
  try {
    await assert.rejects(
      resolveUserModel(db, djangoSettings()),
      (error) =>
        isSidecastError(error, 'DB_SCHEMA') &&
        error.message ===
          'table "auth_user" not found: is this the Django database and has `manage.py migrate` run?',
    );
  } finally {
    await db.close();
  }
  const partial = await databaseFor('C_bigautofield_user');
  try {
    await partial.query('DROP TABLE vecapp_bigautouser_user_permissions');
    await assert.rejects(
      resolveUserModel(partial, djangoSettings({ authUserModel: 'vecapp.BigAutoUser' })),
      (error) =>
        isSidecastError(error, 'DB_SCHEMA') &&
        error.message.startsWith('table "vecapp_bigautouser_user_permissions" not found'),
    );
    const publicIdSettings = djangoSettings({
      authUserModel: 'vecapp.BigAutoUser',
      sesame: { ...djangoSettings().sesame, primaryKeyField: 'public_id' },
    });
    await assert.rejects(
      resolveUserModel(partial, publicIdSettings, sesameUserLookup(publicIdSettings.sesame)),
      (error) => isSidecastError(error, 'DB_SCHEMA') && /public_id/.test(error.message),
    );
  } finally {
    await partial.close();
  }
});
