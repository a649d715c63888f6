/**
 * `sidecast serve` that cannot work must say why in one line on stderr, exit non-zero, leave no
 * process behind, and never print a secret: the Django SECRET_KEY, or a password from a database
 * or Redis URL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createDjangoSqlite } from '../../src/demo/schema.js';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { processEnv, runServe, type ServeResult } from '../support/e2e.js';
import { freePort } from '../support/ports.js';
import { childPids, groupMembers, spawnServeGroup } from '../support/processes.js';

const SECRET = `startup-secret-${randomBytes(12).toString('hex')}`;
const DB_PASSWORD = `db-pass-${randomBytes(6).toString('hex')}`;
const REDIS_PASSWORD = `redis-pass-${randomBytes(6).toString('hex')}`;
const SUFFIX = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const PG_EMPTY = `sidecast_empty_${SUFFIX}`;
const MYSQL_EMPTY = `sidecast_empty_${SUFFIX}`;
const NO_DJANGO_TABLES =
  'sidecast: table "auth_user" not found: is this the Django database and has `manage.py migrate` run?';

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

  for (const [bus, flag, scheme, where] of [
    ['nats', '--nats', 'nats', 'NATS at'],
    ['nats-jetstream', '--nats', 'nats', 'NATS at'],
    ['redis-cluster', '--redis-cluster', 'redis', 'Redis Cluster at'],
  ] as const) {
    void test(`unreachable ${bus} bus (closed port)`, async () => {
      const url = `${scheme}://user:${REDIS_PASSWORD}@127.0.0.1:${port}`;
      const vars = processEnv({ ...site.env, SIDECAST_BUS: bus });
      const line = failureLine(await serve([flag, url], vars), 1, [REDIS_PASSWORD]);
      assert.ok(
        line.startsWith(`sidecast: cannot reach ${where} ${scheme}://user:***@127.0.0.1:${port}: `),
        line,
      );
    });
  }

  void test('a database without Django tables: empty SQLite file', async () => {
    const file = join(dir, 'empty.sqlite3');
    await writeFile(file, '');
    const line = failureLine(await serve(['--django-db', `sqlite://${file}`]), 1, []);
    assert.equal(line, NO_DJANGO_TABLES);
  });

  void test('a database without Django tables: empty PostgreSQL and MariaDB databases', async () => {
    const urls = [
      `postgres://postgres@127.0.0.1:5432/${PG_EMPTY}`,
      `mysql://root@127.0.0.1:3306/${MYSQL_EMPTY}`,
    ];
    for (const url of urls)
      assert.equal(failureLine(await serve(['--django-db', url]), 1, []), NO_DJANGO_TABLES);
  });

  void test('the custom user table missing (AUTH_USER_MODEL does not match the database)', async () => {
    const vars = processEnv({ ...site.env, AUTH_USER_MODEL: 'accounts_big.BigUser' });
    const line = failureLine(await serve([], vars), 1, []);
    assert.match(line, /^sidecast: table "accounts_big_biguser" not found/);
  });
});

/**
 * Whatever the number of workers, a server that cannot start prints one line, exits non-zero and
 * leaves no process behind: each run has a process group of its own, and once the first process
 * has exited no process may remain in it (a worker left over would keep the group alive).
 */
interface GroupResult extends ServeResult {
  readonly leftBehind: readonly number[];
}

async function runInGroup(
  args: readonly string[],
  vars: Record<string, string>,
): Promise<GroupResult> {
  const served = spawnServeGroup(args, vars);
  const timer = setTimeout(() => served.kill(), 30_000);
  try {
    const { code, signal } = await served.exited;
    return {
      code,
      signal,
      stdout: served.stdout(),
      stderr: served.stderr(),
      leftBehind: groupMembers(served.pgid),
    };
  } finally {
    clearTimeout(timer);
    served.kill();
  }
}

/** Exactly one line, no stack trace, the exit status, nothing left running; returns the line. */
function oneLineFailure(result: GroupResult, exitCode: number): string {
  const report = JSON.stringify(result);
  assert.deepEqual(result.leftBehind, [], `processes left behind: ${report}`);
  assert.equal(result.signal, null, `killed, so it did not exit by itself: ${report}`);
  assert.equal(result.code, exitCode, report);
  assert.equal(result.stdout, '', report);
  assert.doesNotMatch(result.stderr, /^\s+at /m, `a stack trace: ${report}`);
  const lines = result.stderr.split('\n');
  assert.equal(lines.length, 2, `one line on stderr, got: ${result.stderr}`);
  assert.equal(lines[1], '');
  return lines[0]!;
}

void describe('sidecast serve start-up errors, one line whatever the number of workers', () => {
  let dir: string;
  let database: string;
  let closed: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecast-startup-workers-'));
    database = join(dir, 'django.sqlite3');
    createDjangoSqlite(database, { models: [], users: [{ username: 'ada' }] });
    closed = await freePort();
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const vars = (extra: Record<string, string> = {}) =>
    processEnv({ DJANGO_SECRET_KEY: SECRET, SIDECAST_BUS: 'memory', ...extra });
  const serve = (workers: number, args: string[], env = vars()) =>
    runInGroup(['--workers', String(workers), '--log-level', 'warn', ...args], env);

  for (const workers of [2, 1]) {
    const flags = (...args: string[]) => ['--django-db', `sqlite://${database}`, ...args];

    void test(`--workers ${workers}: the port is already in use`, async () => {
      const squatter = createServer();
      squatter.listen(0, '127.0.0.1');
      await once(squatter, 'listening');
      const { port } = squatter.address() as AddressInfo;
      try {
        const line = oneLineFailure(await serve(workers, flags('--port', String(port))), 1);
        assert.equal(line, `sidecast: 127.0.0.1:${port} is already in use`);
      } finally {
        squatter.close();
      }
    });

    void test(`--workers ${workers}: the host is not an address of this machine`, async () => {
      // TEST-NET-3 (RFC 5737): never assigned to a machine, so never local.
      const result = await serve(workers, flags('--host', '203.0.113.7', '--port', '0'));
      assert.equal(
        oneLineFailure(result, 1),
        'sidecast: cannot listen on 203.0.113.7:0: 203.0.113.7 is not an address of this machine',
      );
    });

    void test(`--workers ${workers}: the database cannot be reached`, async () => {
      const url = `postgres://postgres:${DB_PASSWORD}@127.0.0.1:${closed}/app`;
      const result = await serve(workers, ['--port', '0', '--django-db', url]);
      assert.ok(!JSON.stringify(result).includes(DB_PASSWORD), 'the password is not shown');
      assert.equal(
        oneLineFailure(result, 1),
        `sidecast: cannot reach database postgres://127.0.0.1:${closed}/app: connection refused`,
      );
    });

    void test(`--workers ${workers}: the database has no Django tables`, async () => {
      const empty = join(dir, `empty-${workers}.sqlite3`);
      await writeFile(empty, '');
      const result = await serve(workers, ['--port', '0', '--django-db', `sqlite://${empty}`]);
      assert.equal(oneLineFailure(result, 1), NO_DJANGO_TABLES);
    });

    void test(`--workers ${workers}: Redis cannot be reached (no --wait-for-bus)`, async () => {
      const redis = `redis://:${REDIS_PASSWORD}@127.0.0.1:${closed}/1`;
      const result = await serve(workers, flags('--port', '0', '--bus', 'redis', '--redis', redis));
      assert.ok(!JSON.stringify(result).includes(REDIS_PASSWORD), 'the password is not shown');
      const line = oneLineFailure(result, 1);
      const where = `redis://:***@127.0.0.1:${closed}/1`;
      assert.ok(line.startsWith(`sidecast: cannot reach Redis at ${where}: `), line);
    });

    void test(`--workers ${workers}: DJANGO_SECRET_KEY is missing`, async () => {
      const env = processEnv({ SIDECAST_BUS: 'memory' });
      const line = oneLineFailure(await serve(workers, flags('--port', '0'), env), 2);
      assert.equal(
        line,
        'sidecast: DJANGO_SECRET_KEY is not set: export the SECRET_KEY of your Django project',
      );
    });

    void test(`--workers ${workers}: a bad option value`, async () => {
      const line = oneLineFailure(await serve(workers, flags('--port', 'eighty')), 2);
      assert.equal(line, 'sidecast: --port: expected an integer, got "eighty"');
    });
  }

  void test('--workers 2: a replacement worker that cannot start ends the server, listening worker included', async () => {
    const file = join(dir, 'replaced.sqlite3');
    createDjangoSqlite(file, { models: [], users: [{ username: 'ada' }] });
    const served = spawnServeGroup(
      ['--workers', '2', '--port', '0', '--log-level', 'error', '--django-db', `sqlite://${file}`],
      vars(),
    );
    try {
      await served.listening;
      const [first, second] = childPids(served.pgid);
      assert.ok(first && second, 'two workers');
      // The workers keep the file they opened; a new worker finds an empty database instead.
      await rename(file, `${file}.away`);
      await writeFile(file, '');
      process.kill(first, 'SIGKILL');
      const { code, signal } = await served.exited;
      assert.equal(signal, null);
      assert.equal(code, 1, served.stderr());
      assert.deepEqual(groupMembers(served.pgid), [], 'the listening worker is gone too');
      const lines = served.stderr().trim().split('\n');
      const logged = lines.filter((line) => line.startsWith('{'));
      const printed = lines.filter((line) => !line.startsWith('{'));
      assert.deepEqual(printed, [NO_DJANGO_TABLES], served.stderr());
      // One replacement, not one after another.
      assert.equal(logged.length, 1, served.stderr());
      assert.match(logged[0]!, /"msg":"worker exited; starting another"/);
    } finally {
      served.kill();
    }
  });
});
