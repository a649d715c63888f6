/** Database URLs, placeholders, error wording, and the SQLite adapter on a real temp file. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { isSidecastError } from '../../src/errors.js';
import { openDjangoDb, parseDatabaseUrl } from '../../src/django/db.js';
import { toNumberedPlaceholders } from '../../src/django/db-drivers.js';
import { classifyDbError, toDbError } from '../../src/django/db-errors.js';

void test('database URLs name the dialect and a location without credentials', () => {
  const pg = parseDatabaseUrl('postgres://django:s3cr%40t@db.internal:5433/app?sslmode=require');
  assert.equal(pg.dialect, 'postgres');
  assert.equal(pg.location, 'postgres://db.internal:5433/app');
  assert.equal(pg.password, 's3cr@t');
  assert.equal(parseDatabaseUrl('postgresql://h/app').dialect, 'postgres');
  const my = parseDatabaseUrl('mysql://root:pw@127.0.0.1:3306/app');
  assert.equal(my.dialect, 'mysql');
  assert.equal(my.location, 'mysql://127.0.0.1:3306/app');
  assert.equal(parseDatabaseUrl('sqlite:///srv/app/db.sqlite3').target, '/srv/app/db.sqlite3');
  // dj-database-url writes absolute paths with four slashes.
  assert.equal(parseDatabaseUrl('sqlite:////srv/app/db.sqlite3').target, '/srv/app/db.sqlite3');
  assert.equal(parseDatabaseUrl('sqlite:///srv/my%20app/db').target, '/srv/my app/db');
});

void test('bad database URLs fail with CONFIG_INVALID and never echo a password', () => {
  assert.throws(
    () => parseDatabaseUrl('redis://:hunter22@127.0.0.1:6379/0'),
    (error) =>
      isSidecastError(error, 'CONFIG_INVALID') &&
      error.message ===
        'unknown database URL scheme "redis:" (expected postgres://, mysql:// or sqlite:///...)',
  );
  assert.throws(
    () => parseDatabaseUrl('/var/db.sqlite3'),
    (error) => isSidecastError(error, 'CONFIG_INVALID'),
  );
  assert.throws(
    () => parseDatabaseUrl('sqlite://db.sqlite3'),
    (error) => isSidecastError(error, 'CONFIG_INVALID') && /absolute path/.test(error.message),
  );
  assert.throws(
    () => parseDatabaseUrl('postgres://u:hunter22@[bad/x'),
    (error) => isSidecastError(error, 'CONFIG_INVALID') && !error.message.includes('hunter22'),
  );
});

void test('? placeholders become $n for PostgreSQL, except inside quotes', () => {
  assert.equal(
    toNumberedPlaceholders(`SELECT a FROM t WHERE b = ? AND c = '?' AND "d?" = ? OR e = 'it''s?'`),
    `SELECT a FROM t WHERE b = $1 AND c = '?' AND "d?" = $2 OR e = 'it''s?'`,
  );
});

void test('driver failures are classified and worded on one line', () => {
  const where = 'postgres://127.0.0.1:5432/app';
  const refused = toDbError(
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    where,
  );
  assert.equal(refused.code, 'DB_UNAVAILABLE');
  assert.equal(refused.message, `cannot reach database ${where}: connection refused`);
  // Node's happy-eyeballs connect wraps the codes in an AggregateError with an empty message.
  const aggregate = new AggregateError(
    [Object.assign(new Error('x'), { code: 'ECONNREFUSED' })],
    '',
  );
  assert.equal(classifyDbError(aggregate), 'unavailable');
  const missing = toDbError(
    Object.assign(new Error('relation "auth_user" does not exist'), { code: '42P01' }),
    where,
  );
  assert.equal(missing.code, 'DB_SCHEMA');
  assert.equal(
    classifyDbError({ code: 'ER_NO_SUCH_TABLE', message: "Table 'x' doesn't exist" }),
    'schema',
  );
  assert.equal(classifyDbError(new Error('no such table: auth_user')), 'schema');
  assert.equal(
    classifyDbError({ code: '3D000', message: 'database "x" does not exist' }),
    'unavailable',
  );
  assert.equal(classifyDbError({ code: 'PROTOCOL_CONNECTION_LOST' }), 'unavailable');
  assert.equal(classifyDbError({ code: '22P02', message: 'invalid input syntax' }), 'query');
  const echoed = toDbError(new Error('login as django/hunter22 refused'), where, 'hunter22');
  assert.ok(!echoed.message.includes('hunter22'), echoed.message);
});

void test('SQLite: a missing file is DB_UNAVAILABLE and is not created', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecast-db-'));
  try {
    const path = join(dir, 'absent.sqlite3');
    await assert.rejects(
      openDjangoDb(`sqlite://${path}`),
      (error) =>
        isSidecastError(error, 'DB_UNAVAILABLE') &&
        error.message.startsWith(`cannot reach database sqlite://${path}: `),
    );
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('SQLite: 64-bit integers survive, statements without rows resolve to []', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecast-db-'));
  const path = join(dir, 'ints.sqlite3');
  new Database(path).exec('CREATE TABLE t (id integer PRIMARY KEY, v text, b blob)').close();
  const db = await openDjangoDb(`sqlite://${path}`);
  try {
    assert.equal(db.dialect, 'sqlite');
    assert.equal(db.quote('a"b'), '"a""b"');
    assert.deepEqual(
      await db.query('INSERT INTO t VALUES (?, ?, ?)', [1099511627781n, 'x', null]),
      [],
    );
    await db.query('INSERT INTO t VALUES (?, ?, ?)', [
      9007199254740993n,
      'y',
      new Uint8Array([1, 2]),
    ]);
    const rows = await db.query<{ id: unknown; v: string }>('SELECT id, v FROM t ORDER BY id');
    assert.deepEqual(rows, [
      { id: 1099511627781, v: 'x' },
      { id: '9007199254740993', v: 'y' },
    ]);
    const found = await db.query<{ v: string }>('SELECT v FROM t WHERE id = ?', [
      9007199254740993n,
    ]);
    assert.deepEqual(found, [{ v: 'y' }]);
    await assert.rejects(db.query('SELECT * FROM nope'), (error) =>
      isSidecastError(error, 'DB_SCHEMA'),
    );
  } finally {
    await db.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
