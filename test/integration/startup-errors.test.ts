/**
 * `sidecast serve` that cannot work must say why in one line on stderr, exit non-zero, and never
 * print a secret: the Django SECRET_KEY, or a password from a database or Redis URL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { processEnv, runServe, type ServeResult } from '../support/e2e.js';
import { freePort } from '../support/ports.js';

const SECRET = `startup-secret-${randomBytes(12).toString('hex')}`;
const DB_PASSWORD = `db-pass-${randomBytes(6).toString('hex')}`;
const REDIS_PASSWORD = `redis-pass-${randomBytes(6).toString('hex')}`;
const SUFFIX = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const PG_EMPTY = `sidecast_empty_${SUFFIX}`;
const MYSQL_EMPTY = `sidecast_empty_${SUFFIX}`;

async function pgAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function mysqlAdmin(sql: string): Promise<void> {
  const connection = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  try {
    await connection.query(sql);
  } finally {
    await connection.end();
  }
}

/** The one line sidecast printed, after checking everything else about how it failed. */
function failureLine(result: ServeResult, exitCode: number, secrets: readonly string[]): string {
  const report = JSON.stringify(result);
  assert.equal(result.signal, null, `killed, so it did not exit by itself: ${report}`);
  assert.equal(result.code, exitCode, report);
  assert.equal(result.stdout, '', report);
  for (const secret of [SECRET, ...secrets])
    assert.ok(!report.includes(secret), `leaked: ${report}`);
  const lines = result.stderr.split('\n');
  assert.equal(lines.length, 2, `one line on stderr, got: ${result.stderr}`);
  assert.equal(lines[1], '');
  return lines[0]!;
}

void describe('sidecast serve start-up errors', () => {
  let dir: string;
  let site: DjangoSite;
  let port: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecast-startup-'));
    port = await freePort();
    site = await createDjangoSite({ dialect: 'sqlite', secretKey: SECRET });
    await pgAdmin(`CREATE DATABASE "${PG_EMPTY}"`);
    await mysqlAdmin(`CREATE DATABASE \`${MYSQL_EMPTY}\``);
  });
  after(async () => {
    await pgAdmin(`DROP DATABASE IF EXISTS "${PG_EMPTY}"`).catch(() => undefined);
    await mysqlAdmin(`DROP DATABASE IF EXISTS \`${MYSQL_EMPTY}\``).catch(() => undefined);
    await site?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const env = () => processEnv({ DJANGO_SECRET_KEY: SECRET });
  const serve = (args: string[], vars = env()) => runServe(['--workers', '1', ...args], vars);

  void test('DJANGO_SECRET_KEY missing', async () => {
    const result = await serve(['--django-db', site.dbUrl], processEnv({}));
    const line = failureLine(result, 2, []);
    assert.match(
      line,
      /^sidecast: DJANGO_SECRET_KEY is not set: export the SECRET_KEY of your Django project$/,
    );
  });

  void test('unknown database URL scheme', async () => {
    const url = `oracle://scott:${DB_PASSWORD}@127.0.0.1/orcl`;
    const line = failureLine(await serve(['--django-db', url]), 2, [DB_PASSWORD]);
    assert.match(
      line,
      /^sidecast: unknown database URL scheme "oracle:" \(expected postgres:\/\/, mysql:\/\/ or sqlite:\/\/\/.*\)$/,
    );
  });

  for (const scheme of ['postgres', 'mysql'] as const) {
    void test(`unreachable ${scheme} database (closed port)`, async () => {
      const url = `${scheme}://root:${DB_PASSWORD}@127.0.0.1:${port}/app`;
      const line = failureLine(await serve(['--django-db', url]), 1, [DB_PASSWORD]);
      assert.equal(
        line,
        `sidecast: cannot reach database ${scheme}://127.0.0.1:${port}/app: connection refused`,
      );
    });
  }

  void test('unreachable Redis (closed port)', async () => {
    const redis = `redis://:${REDIS_PASSWORD}@127.0.0.1:${port}/1`;
    const vars = processEnv({ ...site.env, SIDECAST_REDIS: redis });
    const line = failureLine(await serve([], vars), 1, [REDIS_PASSWORD]);
    const where = `redis://:***@127.0.0.1:${port}/1`;
    assert.ok(line.startsWith(`sidecast: cannot reach Redis at ${where}: `), line);
    assert.match(line, /ECONNREFUSED|connection refused/i);
  });

  const NO_TABLES =
    'sidecast: table "auth_user" not found: is this the Django database and has `manage.py migrate` run?';

  void test('a database without Django tables: empty SQLite file', async () => {
    const file = join(dir, 'empty.sqlite3');
    await writeFile(file, '');
    const line = failureLine(await serve(['--django-db', `sqlite://${file}`]), 1, []);
    assert.equal(line, NO_TABLES);
  });

  void test('a database without Django tables: empty PostgreSQL and MariaDB databases', async () => {
    const urls = [
      `postgres://postgres@127.0.0.1:5432/${PG_EMPTY}`,
      `mysql://root@127.0.0.1:3306/${MYSQL_EMPTY}`,
    ];
    for (const url of urls)
      assert.equal(failureLine(await serve(['--django-db', url]), 1, []), NO_TABLES);
  });

  void test('the custom user table missing (AUTH_USER_MODEL does not match the database)', async () => {
    const vars = processEnv({ ...site.env, AUTH_USER_MODEL: 'accounts_big.BigUser' });
    const line = failureLine(await serve([], vars), 1, []);
    assert.match(line, /^sidecast: table "accounts_big_biguser" not found/);
  });

  void test('with several workers the failure is still one line', async () => {
    const url = `postgres://postgres:${DB_PASSWORD}@127.0.0.1:${port}/app`;
    const result = await runServe(['--workers', '2', '--django-db', url], env());
    const line = failureLine(result, 1, [DB_PASSWORD]);
    assert.equal(
      line,
      `sidecast: cannot reach database postgres://127.0.0.1:${port}/app: connection refused`,
    );
  });
});
