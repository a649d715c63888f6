/**
 * The Django store on real PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB
 * (127.0.0.1:3306, root). Each run creates its own database with Django-shaped tables, loads the
 * permission fixture of test/fixtures/sesame_v2.json, and drops the database afterwards.
 * A missing server fails these tests; it never skips them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sesameUserLookup } from '../../src/auth/sesame/settings.js';
import { isSidecastError } from '../../src/errors.js';
import { openDjangoDb, type DjangoDb } from '../../src/django/db.js';
import type { FieldType, PkValue } from '../../src/django/fields.js';
import type { DjangoSettings } from '../../src/django/settings.js';
import { createDjangoStore, type DjangoStore } from '../../src/django/store.js';
import { resolveUserModel } from '../../src/django/user-model.js';
import {
  authTables,
  authUserTables,
  userTables,
  type ServerDialect,
} from '../support/django-ddl.js';
import {
  djangoSettings,
  insertRows,
  loadVectors,
  permissionRows,
  type Insert,
} from '../support/django-vectors.js';
import { freePort } from '../support/ports.js';

const vectors = loadVectors();

interface Server {
  readonly dialect: ServerDialect;
  readonly admin: string;
  readonly url: (database: string) => string;
  readonly drop: (database: string) => string;
}

const SERVERS: Server[] = [
  {
    dialect: 'postgres',
    admin: 'postgres://postgres@127.0.0.1:5432/postgres',
    url: (name) => `postgres://postgres@127.0.0.1:5432/${name}`,
    drop: (name) => `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`,
  },
  {
    dialect: 'mysql',
    admin: 'mysql://root@127.0.0.1:3306/mysql',
    url: (name) => `mysql://root@127.0.0.1:3306/${name}`,
    drop: (name) => `DROP DATABASE IF EXISTS ${name}`,
  },
];

/** Table names Django 5.2 gave this model: truncated to 63 on PostgreSQL, 64 on MySQL. */
const LONG_MODEL = 'vecapp.UserModelWithAnExtremelyLongNameOverflowingTheLimitsAbcde';
const LONG_TABLES: Record<ServerDialect, [string, string, string]> = {
  postgres: [
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsb702',
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimits78a3',
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimits1939',
  ],
  mysql: [
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsabcde',
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsad85b',
    'vecapp_usermodelwithanextremelylongnameoverflowingthelimitsad0ae',
  ],
};

function customTables(dialect: ServerDialect): string[] {
  const mixin = (table: string, model: string) => ({
    groupsTable: `${table}_groups`,
    permissionsTable: `${table}_user_permissions`,
    userColumn: `${model}_id`,
  });
  const [long, longGroups, longPermissions] = LONG_TABLES[dialect];
  const hexUuid = dialect === 'mysql' ? 'char(32)' : 'uuid';
  return [
    ...userTables(dialect, {
      table: 'vecapp_bigautouser',
      pk: 'bigAuto',
      extra: ['email varchar(254) NOT NULL'],
      permissions: mixin('vecapp_bigautouser', 'bigautouser'),
    }),
    ...userTables(dialect, {
      table: 'vecapp_uuiduser',
      pk: 'uuid',
      permissions: mixin('vecapp_uuiduser', 'uuiduser'),
    }),
    ...userTables(dialect, {
      table: 'vecapp_struser',
      pk: 'char',
      pkColumn: 'username',
      permissions: mixin('vecapp_struser', 'struser'),
    }),
    ...userTables(dialect, {
      table: 'vecapp_altkeyuser',
      pk: 'auto',
      extra: [`public_id ${hexUuid} NOT NULL UNIQUE`],
    }),
    ...userTables(dialect, { table: 'vecapp_posuser', pk: 'positive' }),
    ...userTables(dialect, {
      table: long,
      pk: 'auto',
      permissions: {
        groupsTable: longGroups,
        permissionsTable: longPermissions,
        userColumn: 'usermodelwithanextremelylongnameoverflowingthelimitsabcde_id',
      },
    }),
    ...(dialect === 'mysql'
      ? userTables(dialect, { table: 'vecapp_hexuuiduser', pk: 'uuidHex' })
      : []),
  ];
}

const UUID = '6f1e2d3c-4b5a-4978-8a1b-2c3d4e5f6a7b';
const PUBLIC_ID = 'a3c1e0f2-9b8d-4c7e-b6a5-0f1e2d3c4b5a';
const NON_ASCII = 'josé.ñandú@例え';
const BIG = 1099511627781n;
const HUGE = 9007199254740993n; // 2^53 + 1: lost by any float on the way

function customRows(dialect: ServerDialect): Insert[] {
  // Stored the way Django writes an aware datetime on each backend.
  const micro =
    dialect === 'postgres' ? '2024-05-31 08:15:42.123456+00' : '2024-05-31 08:15:42.123456';
  const whole = dialect === 'postgres' ? '2024-05-31 08:15:42+00' : '2024-05-31 08:15:42';
  const user = (row: Record<string, unknown>) => ({
    password: `pbkdf2_sha256$1$s$${String(row.username ?? row.id)}`,
    last_login: null,
    is_active: true,
    ...row,
  });
  const uuid = (value: string) => (dialect === 'mysql' ? value.replaceAll('-', '') : value);
  return [
    ['auth_user', { ...authUser(600, 'micro'), last_login: micro }],
    ['auth_user', { ...authUser(601, 'whole'), last_login: whole }],
    [
      'vecapp_bigautouser',
      user({
        id: BIG,
        username: 'big',
        email: 'b@example.com',
        is_superuser: false,
        last_login: micro,
      }),
    ],
    ['vecapp_bigautouser', user({ id: HUGE, username: 'huge', email: '', is_superuser: true })],
    ['vecapp_bigautouser_groups', { bigautouser_id: BIG, group_id: 1 }],
    ['vecapp_bigautouser_user_permissions', { bigautouser_id: BIG, permission_id: 37 }],
    [
      'vecapp_uuiduser',
      user({ id: UUID, username: 'uuidy', is_superuser: false, last_login: whole }),
    ],
    ['vecapp_uuiduser_user_permissions', { uuiduser_id: UUID, permission_id: 41 }],
    ['vecapp_struser', user({ username: NON_ASCII, is_superuser: false })],
    ['vecapp_struser_groups', { struser_id: NON_ASCII, group_id: 1 }],
    ['vecapp_altkeyuser', user({ id: 77, username: 'alt', public_id: uuid(PUBLIC_ID) })],
    ['vecapp_posuser', user({ id: dialect === 'mysql' ? 4000000000 : 7, username: 'pos' })],
    [LONG_TABLES[dialect][0], user({ id: 5, username: 'longy', is_superuser: false })],
    [
      LONG_TABLES[dialect][1],
      { usermodelwithanextremelylongnameoverflowingthelimitsabcde_id: 5, group_id: 1 },
    ],
    ...(dialect === 'mysql'
      ? ([['vecapp_hexuuiduser', user({ id: uuid(UUID), username: 'hexy' })]] as Insert[])
      : []),
  ];
}

function authUser(id: number, username: string): Record<string, unknown> {
  return {
    id,
    password: `pbkdf2_sha256$1$s$${username}`,
    last_login: null,
    is_superuser: false,
    username,
    first_name: '',
    last_name: '',
    email: '',
    is_staff: false,
    is_active: true,
    date_joined: '2024-01-01 00:00:00',
  };
}

for (const server of SERVERS) {
  void describe(`Django store on ${server.dialect}`, () => {
    const database = `sidecast_store_${randomBytes(5).toString('hex')}`;
    let admin: DjangoDb | undefined;
    let db: DjangoDb;

    before(async () => {
      admin = await openDjangoDb(server.admin);
      await admin.query(
        `CREATE DATABASE ${database}${server.dialect === 'mysql' ? ' CHARACTER SET utf8mb4' : ''}`,
      );
      db = await openDjangoDb(server.url(database));
      const ddl = [
        ...authTables(server.dialect),
        ...authUserTables(server.dialect),
        ...customTables(server.dialect),
      ];
      for (const sql of ddl) await db.query(sql);
      await insertRows(db, permissionRows(vectors.permissions));
      await insertRows(db, customRows(server.dialect));
    });

    after(async () => {
      await db?.close();
      if (admin) {
        await admin.query(server.drop(database));
        await admin.close();
      }
    });

    /** Stores share the test's pool, so they are never closed one by one. */
    async function storeFor(settings: DjangoSettings, clock?: () => bigint): Promise<DjangoStore> {
      return createDjangoStore(
        db,
        await resolveUserModel(db, settings),
        settings,
        clock ? { clock } : {},
      );
    }

    void test('contentTypeIds equals get_content_types() for every fixture user', async () => {
      const store = await storeFor(djangoSettings());
      for (const { user, get_content_types_result: expected } of vectors.permissions.users) {
        const found = await store.findUser(BigInt(user.id));
        assert.ok(found, user.username);
        const ids = [...(await store.contentTypeIds(found))].sort((a, b) => a - b);
        assert.deepEqual(ids, expected, user.username);
      }
      await store.check();
    });

    void test('findUser for int, bigint, uuid, char and alternate-key user models', async () => {
      const cases: {
        model: string;
        keyField?: string;
        lookup: PkValue;
        type: FieldType;
        pk: string;
        username: string;
        contentTypes?: number[];
      }[] = [
        { model: 'auth.User', lookup: 600n, type: 'AutoField', pk: '600', username: 'micro' },
        {
          model: 'vecapp.BigAutoUser',
          lookup: BIG,
          type: 'BigAutoField',
          pk: String(BIG),
          username: 'big',
          contentTypes: [10, 11, 13],
        },
        {
          model: 'vecapp.BigAutoUser',
          lookup: HUGE,
          type: 'BigAutoField',
          pk: String(HUGE),
          username: 'huge',
          contentTypes: vectors.permissions.all_django_content_type_rows.map((ct) => ct.id),
        },
        {
          model: 'vecapp.UUIDUser',
          lookup: UUID,
          type: 'UUIDField',
          pk: UUID,
          username: 'uuidy',
          contentTypes: [12],
        },
        {
          model: 'vecapp.StrUser',
          lookup: NON_ASCII,
          type: 'CharField',
          pk: NON_ASCII,
          username: NON_ASCII,
          contentTypes: [11, 13],
        },
        {
          model: 'vecapp.AltKeyUser',
          keyField: 'public_id',
          lookup: PUBLIC_ID,
          type: 'UUIDField',
          pk: '77',
          username: 'alt',
          contentTypes: [],
        },
        {
          model: 'vecapp.PosUser',
          lookup: server.dialect === 'mysql' ? 4000000000n : 7n,
          type: 'PositiveIntegerField',
          pk: server.dialect === 'mysql' ? '4000000000' : '7',
          username: 'pos',
        },
        {
          model: LONG_MODEL,
          lookup: 5n,
          type: 'AutoField',
          pk: '5',
          username: 'longy',
          contentTypes: [11, 13],
        },
      ];
      if (server.dialect === 'mysql') {
        cases.push({
          model: 'vecapp.HexUUIDUser',
          lookup: UUID,
          type: 'UUIDField',
          pk: UUID,
          username: 'hexy',
        });
      }
      for (const c of cases) {
        const defaults = djangoSettings();
        const settings = djangoSettings({
          authUserModel: c.model,
          sesame: { ...defaults.sesame, primaryKeyField: c.keyField ?? 'pk' },
        });
        const model = await resolveUserModel(db, settings, sesameUserLookup(settings.sesame));
        assert.equal(model.lookupFieldType, c.type, c.model);
        const store = createDjangoStore(db, model, settings);
        const user = await store.findUser(c.lookup);
        assert.ok(user, `${c.model} ${String(c.lookup)}`);
        assert.equal(user.pk, c.pk);
        assert.deepEqual(user.lookup, c.lookup);
        assert.equal(user.username, c.username);
        assert.equal(user.isActive, true);
        assert.deepEqual(await store.findUserByUsername(c.username), user);
        if (c.contentTypes) {
          const ids = [...(await store.contentTypeIds(user))].sort((a, b) => a - b);
          assert.deepEqual(ids, c.contentTypes, c.model);
        }
      }
    });

    void test('lookups no row can match find nobody, without a database error', async () => {
      const auth = await storeFor(djangoSettings());
      assert.equal(await auth.findUser(1n << 40n), null); // beyond AutoField's int4
      assert.equal(await auth.findUser(-(1n << 31n)), null);
      assert.equal(await auth.findUser(UUID), null);
      const uuids = await storeFor(djangoSettings({ authUserModel: 'vecapp.UUIDUser' }));
      assert.equal(await uuids.findUser('not-a-uuid'), null);
      assert.equal(await uuids.findUser('00000000-0000-4000-8000-000000000001'), null);
    });

    void test('last_login reads as Python isoformat with exact microseconds', async () => {
      const store = await storeFor(djangoSettings());
      assert.equal((await store.findUser(600n))?.lastLogin, '2024-05-31T08:15:42.123456+00:00');
      assert.equal((await store.findUser(601n))?.lastLogin, '2024-05-31T08:15:42+00:00');
      assert.equal((await store.findUser(503n))?.lastLogin, null);
      const big = await storeFor(djangoSettings({ authUserModel: 'vecapp.BigAutoUser' }));
      assert.equal((await big.findUser(BIG))?.lastLogin, '2024-05-31T08:15:42.123456+00:00');
    });

    void test('recordLogin stores last_login as Django does and reads back the same', async () => {
      const raw =
        server.dialect === 'postgres'
          ? `SELECT to_char(last_login AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS v FROM auth_user WHERE id = ?`
          : `SELECT DATE_FORMAT(last_login, '%Y-%m-%d %H:%i:%s.%f') AS v FROM auth_user WHERE id = ?`;
      const utc = await storeFor(djangoSettings(), () => 1717243200250001n);
      const user = await utc.findUser(504n);
      assert.ok(user);
      const iso = await utc.recordLogin(user);
      assert.equal(iso, '2024-06-01T12:00:00.250001+00:00');
      assert.deepEqual(await db.query(raw, [504n]), [{ v: '2024-06-01 12:00:00.250001' }]);
      assert.equal((await utc.findUser(504n))?.lastLogin, iso);

      // USE_TZ = False: naive local time in TIME_ZONE, which MySQL stores as such.
      const paris = await storeFor(
        djangoSettings({ useTz: false, timeZone: 'Europe/Paris' }),
        () => 1717243200000000n,
      );
      const local = await paris.recordLogin(user);
      assert.equal(local, '2024-06-01T14:00:00');
      assert.equal((await paris.findUser(504n))?.lastLogin, local);
      const stored =
        server.dialect === 'postgres' ? '2024-06-01 12:00:00.000000' : '2024-06-01 14:00:00.000000';
      assert.deepEqual(await db.query(raw, [504n]), [{ v: stored }]);

      const uuids = await storeFor(
        djangoSettings({ authUserModel: 'vecapp.UUIDUser' }),
        () => 1717243200000009n,
      );
      const uuidy = await uuids.findUser(UUID);
      assert.ok(uuidy);
      const again = await uuids.recordLogin(uuidy);
      assert.equal((await uuids.findUser(UUID))?.lastLogin, again);
    });

    void test('statements keep working after a migration changes a column type', async () => {
      // PostgreSQL refuses a prepared plan whose result type changed ("cached plan must not
      // change result type"); the store must recover without a restart.
      const one = await openDjangoDb(server.url(database), { poolSize: 1 });
      try {
        await one.query('CREATE TABLE replan (id integer NOT NULL, v integer NOT NULL)');
        await one.query('INSERT INTO replan (id, v) VALUES (?, ?)', [1, 2]);
        const select = 'SELECT v FROM replan WHERE id = ?';
        assert.deepEqual(await one.query(select, [1]), [{ v: 2 }]);
        await one.query(
          server.dialect === 'postgres'
            ? 'ALTER TABLE replan ALTER COLUMN v TYPE bigint'
            : 'ALTER TABLE replan MODIFY COLUMN v bigint NOT NULL',
        );
        assert.deepEqual(await one.query(select, [1]), [{ v: '2' }]);
      } finally {
        await one.close();
      }
    });

    void test('a missing user table is a DB_SCHEMA error', async () => {
      await assert.rejects(
        resolveUserModel(db, djangoSettings({ authUserModel: 'accounts.CustomUser' })),
        (error) =>
          isSidecastError(error, 'DB_SCHEMA') &&
          error.message ===
            'table "accounts_customuser" not found: is this the Django database and has `manage.py migrate` run?',
      );
      await assert.rejects(db.query('SELECT nope FROM auth_user'), (error) =>
        isSidecastError(error, 'DB_SCHEMA'),
      );
    });

    void test('an unreachable server or database is DB_UNAVAILABLE, without the password', async () => {
      const port = await freePort();
      const scheme = server.dialect === 'postgres' ? 'postgres' : 'mysql';
      await assert.rejects(
        openDjangoDb(`${scheme}://django:hunter22secret@127.0.0.1:${port}/app`, {
          connectTimeoutMs: 2000,
        }),
        (error) =>
          isSidecastError(error, 'DB_UNAVAILABLE') &&
          error.message ===
            `cannot reach database ${scheme}://127.0.0.1:${port}/app: connection refused`,
      );
      await assert.rejects(openDjangoDb(server.url(`${database}_absent`)), (error) => {
        assert.ok(isSidecastError(error, 'DB_UNAVAILABLE'), String(error));
        assert.match(error.message, /^cannot reach database .*_absent: .+/);
        return true;
      });
    });
  });
}
