/**
 * The Django test harness against the real example project, for every database and user model:
 * migrations, users, django-sesame tokens, the guide's get_content_types, and the events that
 * admin actions publish on Redis. Other integration tests build on these guarantees.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import {
  DjangoCommandError,
  createDjangoSite,
  type DjangoDialect,
  type DjangoSite,
  type DjangoUserModel,
} from '../support/django.js';

type EventValue = string | number | null;

/** Python's json.dumps() with default arguments, for a flat object. */
function pythonJsonDumps(event: Record<string, EventValue>): string {
  const encode = (value: EventValue): string =>
    JSON.stringify(value).replace(
      /[\u0080-\uffff]/g,
      (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  const items = Object.entries(event).map(([key, value]) => `${encode(key)}: ${encode(value)}`);
  return `{${items.join(', ')}}`;
}

interface Subscription {
  next(): Promise<string>;
  close(): Promise<void>;
}

/** Subscribes to the site's channel; fails at once, rather than retrying, when Redis is down. */
async function subscribe(site: DjangoSite): Promise<Subscription> {
  const redis = new Redis(site.redisUrl, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  const queue: string[] = [];
  const waiting: ((payload: string) => void)[] = [];
  redis.on('message', (_channel: string, payload: string) => {
    const waiter = waiting.shift();
    if (waiter) waiter(payload);
    else queue.push(payload);
  });
  await redis.subscribe(site.channel);
  return {
    next() {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no event within 5 s')), 5000);
        waiting.push((payload) => {
          clearTimeout(timer);
          resolve(payload);
        });
      });
    },
    async close() {
      await redis.quit();
    },
  };
}

/** Runs one query on the site's database with the Node driver sidecast uses for that dialect. */
async function queryRows(site: DjangoSite, sql: string): Promise<Record<string, unknown>[]> {
  if (site.dialect === 'postgres') {
    const client = new pg.Client({ connectionString: site.dbUrl });
    await client.connect();
    try {
      return (await client.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }
  if (site.dialect === 'mysql') {
    const connection = await mysql.createConnection(site.dbUrl);
    try {
      const [rows] = await connection.query(sql);
      return rows as Record<string, unknown>[];
    } finally {
      await connection.end();
    }
  }
  const db = new Database(fileURLToPath(site.dbUrl.replace(/^sqlite:/, 'file:')), {
    readonly: true,
  });
  try {
    return db.prepare(sql).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

async function databaseExists(site: DjangoSite): Promise<boolean> {
  const name = new URL(site.dbUrl).pathname.slice(1);
  if (site.dialect === 'postgres') {
    const client = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
    await client.connect();
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    await client.end();
    return found.rowCount === 1;
  }
  if (site.dialect === 'mysql') {
    const connection = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
    const [rows] = await connection.query(
      'SELECT 1 FROM information_schema.schemata WHERE schema_name = ?',
      [name],
    );
    await connection.end();
    return (rows as unknown[]).length === 1;
  }
  return existsSync(fileURLToPath(site.dbUrl.replace(/^sqlite:/, 'file:')));
}

const USER_MODELS: Record<DjangoUserModel, { table: string; pk: RegExp; tokenLength: number }> = {
  // Token lengths with SESAME_MAX_AGE set: 4-, 16- or 8-byte pk + 4-byte timestamp + 10-byte signature.
  'auth.User': { table: 'auth_user', pk: /^[1-9]\d*$/, tokenLength: 24 },
  'accounts_uuid.UuidUser': {
    table: 'accounts_uuid_uuiduser',
    pk: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    tokenLength: 40,
  },
  'accounts_big.BigUser': { table: 'accounts_big_biguser', pk: /^[1-9]\d*$/, tokenLength: 30 },
};

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/;

for (const dialect of ['postgres', 'mysql', 'sqlite'] satisfies DjangoDialect[]) {
  for (const [userModel, expected] of Object.entries(USER_MODELS)) {
    void describe(`Django site on ${dialect} with ${userModel}`, () => {
      let site: DjangoSite;
      let events: Subscription;

      before(async () => {
        site = await createDjangoSite({ dialect, userModel: userModel as DjangoUserModel });
        events = await subscribe(site);
      });
      after(async () => {
        await events?.close();
        await site?.close();
      });

      void test('migrates the database named by dbUrl, with the chosen user table', async () => {
        assert.equal(site.env.AUTH_USER_MODEL, userModel);
        assert.equal(site.env.SIDECAST_DJANGO_DB, site.dbUrl);
        assert.equal(site.env.SESAME_MAX_AGE, '30');
        const applied = await queryRows(
          site,
          "SELECT app FROM django_migrations WHERE app = 'catalog'",
        );
        assert.equal(applied.length, 1);
        assert.deepEqual(await queryRows(site, `SELECT id FROM ${expected.table}`), []);
      });

      void test('creates users whose django-sesame tokens get_user accepts', async () => {
        const { driver } = site;
        const alice = await driver.createUser({ username: 'alice', password: 's3cret!' });
        assert.match(alice.pk, expected.pk);
        const rows = await queryRows(site, `SELECT username FROM ${expected.table}`);
        assert.deepEqual(
          rows.map((row) => row.username),
          ['alice'],
        );

        const token = await driver.getToken({ username: 'alice' });
        assert.match(token, /^[A-Za-z0-9_-]+$/);
        assert.equal(token.length, expected.tokenLength);
        assert.equal(await driver.getUser({ token }), 'alice');
        assert.equal(await driver.getUser({ token, scope: 'websockets' }), null);
        assert.equal(await driver.getUser({ token: `${token}A` }), null);

        const scoped = await driver.getToken({ username: 'alice', scope: 'websockets' });
        assert.equal(await driver.getUser({ token: scoped, scope: 'websockets' }), 'alice');
        assert.equal(await driver.getUser({ token: scoped }), null);

        await driver.setPassword({ username: 'alice', password: 's3cret!' });
        assert.equal(await driver.getUser({ token }), null, 'a new hash revokes old tokens');
        const fresh = await driver.getToken({ username: 'alice' });
        await driver.setActive({ username: 'alice', active: false });
        assert.equal(await driver.getUser({ token: fresh }), null, 'inactive users are refused');
      });

      void test('computes content types as the guide does', async () => {
        const { driver } = site;
        const book = await driver.contentTypeId({ appLabel: 'catalog', model: 'Book' });
        const author = await driver.contentTypeId({ appLabel: 'catalog', model: 'author' });
        await driver.createGroup({ name: 'editors', perms: ['catalog.change_author'] });
        await driver.createUser({ username: 'reader', perms: ['catalog.view_book'] });
        await driver.createUser({ username: 'editor', groups: ['editors'] });
        await driver.createUser({
          username: 'both',
          groups: ['editors'],
          perms: ['catalog.view_book'],
        });
        await driver.createUser({
          username: 'deleter',
          perms: ['catalog.delete_book', 'catalog.add_book'],
        });
        await driver.createUser({ username: 'root', isSuperuser: true });

        assert.deepEqual(await driver.getContentTypes({ username: 'reader' }), [book]);
        assert.deepEqual(await driver.getContentTypes({ username: 'editor' }), [author]);
        assert.deepEqual(
          await driver.getContentTypes({ username: 'both' }),
          [book, author].sort((a, b) => a - b),
        );
        assert.deepEqual(await driver.getContentTypes({ username: 'deleter' }), []);
        const all = await queryRows(site, 'SELECT id FROM django_content_type');
        assert.deepEqual(
          await driver.getContentTypes({ username: 'root' }),
          all.map((row) => Number(row.id)).sort((a, b) => a - b),
        );
      });

      void test('admin actions publish json.dumps payloads on the site channel', async () => {
        const { driver } = site;
        const author = await driver.contentTypeId({ appLabel: 'catalog', model: 'author' });
        const name = 'Zoë “Ó” / 😀';
        const pk = await driver.adminAdd({ model: 'catalog.author', data: { name } });

        const payload = await events.next();
        const event = JSON.parse(payload) as Record<string, EventValue>;
        assert.deepEqual(Object.keys(event), [
          'model',
          'object',
          'message',
          'timestamp',
          'user',
          'content_type_id',
          'object_id',
        ]);
        assert.deepEqual(
          { ...event, timestamp: null },
          {
            model: 'author',
            object: name,
            message: 'Added.',
            timestamp: null,
            user: 'admin',
            content_type_id: author,
            object_id: pk,
          },
        );
        assert.match(String(event.timestamp), TIMESTAMP);
        assert.equal(payload, pythonJsonDumps(event));
        assert.ok(payload.includes('Zo\\u00eb \\u201c\\u00d3\\u201d / \\ud83d\\ude00'), payload);

        // Changing a user exercises the user model's pk in admin URLs and in object_id.
        const target = await driver.createUser({ username: 'target' });
        await driver.adminChange({ model: userModel, pk: target.pk, data: { first_name: 'T' } });
        const changed = JSON.parse(await events.next()) as Record<string, EventValue>;
        const [appLabel, model] = userModel.split('.') as [string, string];
        assert.equal(changed.content_type_id, await driver.contentTypeId({ appLabel, model }));
        assert.equal(changed.object_id, target.pk);
        assert.equal(changed.message, 'Changed First name.');

        await driver.adminDelete({ model: 'catalog.author', pk });
        const deleted = JSON.parse(await events.next()) as Record<string, EventValue>;
        assert.deepEqual([deleted.object_id, deleted.message], [pk, '']);
      });

      void test('close() drops the database', async () => {
        assert.equal(await databaseExists(site), true);
        await site.close();
        assert.equal(await databaseExists(site), false);
        await assert.rejects(site.driver.getToken({ username: 'alice' }));
      });
    });
  }
}

void describe('Django site options', () => {
  void test('sesame settings, extra settings and driver errors', async () => {
    const site = await createDjangoSite({
      dialect: 'sqlite',
      sesame: { MAX_AGE: 'None', SESAME_SIGNATURE_SIZE: '16' },
      env: { SIDECAST_URL: 'ws://127.0.0.1:9999/live' },
      secretKey: 'harness-secret',
    });
    const events = await subscribe(site);
    try {
      assert.equal(site.env.DJANGO_SECRET_KEY, 'harness-secret');
      assert.equal(site.env.SESAME_MAX_AGE, 'None');
      const { driver } = site;
      await driver.createUser({ username: 'nina' });
      const token = await driver.getToken({ username: 'nina' });
      assert.equal(token.length, 27, '4-byte pk + 16-byte signature, no timestamp');
      assert.equal(await driver.getUser({ token }), 'nina');

      const error: unknown = await driver.getToken({ username: 'nobody' }).catch((e: unknown) => e);
      assert.ok(error instanceof DjangoCommandError);
      assert.equal(error.type, 'DoesNotExist');
      assert.equal(await driver.shell<number>('result = args["a"] + 1', { a: 41 }), 42);

      // The /live/ page hands the browser a fresh token and the sidecast URL.
      const page = await driver.shell<string>(
        [
          'from django.contrib.auth import get_user_model',
          'from django.test import Client',
          'client = Client()',
          'client.force_login(get_user_model().objects.get(username="nina"))',
          'result = client.get("/live/").content.decode()',
        ].join('\n'),
      );
      // {% sidecast_connect %} renders them, with the token view, as JSON for the client.
      const json = /<script id="sidecast-options" type="application\/json">(.*?)<\/script>/.exec(
        page,
      )?.[1];
      assert.ok(json, page);
      const options = JSON.parse(json) as { token: string; url: string; tokenUrl: string };
      assert.equal(await driver.getUser({ token: options.token }), 'nina');
      assert.equal(options.url, 'ws://127.0.0.1:9999/live');
      assert.equal(options.tokenUrl, '/sidecast/token/');
      // Both tags rendered: nothing of the template language is left in the page.
      assert.match(page, /<ul id="sidecast-events"><\/ul>/);
      assert.doesNotMatch(page, /\{[%#]|[%#]\}/);

      // Events are translated into the language of the admin request.
      await driver.adminAdd({ model: 'auth.group', data: { name: 'lecteurs' }, language: 'fr' });
      const event = JSON.parse(await events.next()) as Record<string, EventValue>;
      assert.deepEqual([event.model, event.message], ['groupe', 'Ajout.']);

      // A bulk "Delete selected" logs with bulk_create, which sends no post_save: no event,
      // so the next event is the addition that follows it.
      const a = await driver.adminAdd({ model: 'auth.group', data: { name: 'a' } });
      const b = await driver.adminAdd({ model: 'auth.group', data: { name: 'b' } });
      await events.next();
      await events.next();
      assert.equal(await driver.adminDeleteSelected({ model: 'auth.group', pks: [a, b] }), 2);
      await driver.adminAdd({ model: 'auth.group', data: { name: 'c' } });
      const next = JSON.parse(await events.next()) as Record<string, EventValue>;
      assert.deepEqual([next.object, next.message], ['c', 'Added.']);
    } finally {
      await events.close();
      await site.close();
    }
  });
});
