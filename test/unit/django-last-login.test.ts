/** last_login as Python's datetime.isoformat() prints it (spec A.5). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSidecastError } from '../../src/errors.js';
import {
  isoformat,
  isoformatFromDb,
  lastLoginExpression,
  storageText,
  wallTime,
} from '../../src/django/last-login.js';

void test('text read from each database becomes Python isoformat', () => {
  const cases: [string, boolean, string][] = [
    // SQLite stores Django's str(datetime): no fraction when microsecond is 0.
    ['2024-05-31 08:15:42.123456', true, '2024-05-31T08:15:42.123456+00:00'],
    ['2024-05-31 08:15:42', true, '2024-05-31T08:15:42+00:00'],
    ['2024-05-31 10:15:42.500000', false, '2024-05-31T10:15:42.500000'],
    // PostgreSQL to_char(.US) and MySQL DATE_FORMAT(%f) always print six digits.
    ['2024-05-31T08:15:42.000000', true, '2024-05-31T08:15:42+00:00'],
    ['2024-05-31T08:15:42.000001', true, '2024-05-31T08:15:42.000001+00:00'],
    ['2024-05-31T08:15:42.000000', false, '2024-05-31T08:15:42'],
    // parse_datetime: short fractions pad right, seconds may be missing, zones are kept.
    ['2024-05-31 08:15:42.5', true, '2024-05-31T08:15:42.500000+00:00'],
    ['2024-05-31 08:15', true, '2024-05-31T08:15:00+00:00'],
    ['2024-05-31 08:15:42Z', false, '2024-05-31T08:15:42+00:00'],
    ['2024-05-31 08:15:42.25+0200', true, '2024-05-31T08:15:42.250000+02:00'],
    ['2024-05-31 08:15:42-05', true, '2024-05-31T08:15:42-05:00'],
  ];
  for (const [text, useTz, expected] of cases) {
    assert.equal(isoformatFromDb(text, useTz), expected, `${text} (USE_TZ=${useTz})`);
  }
  assert.equal(isoformatFromDb(null, true), null);
  assert.throws(
    () => isoformatFromDb('yesterday', true),
    (error) => isSidecastError(error, 'DB_SCHEMA'),
  );
});

void test('wall time keeps microseconds and follows the time zone', () => {
  // 2024-05-31T08:15:42.123456Z
  const micros = 1717143342123456n;
  const utc = wallTime(micros);
  assert.equal(isoformat(utc, '+00:00'), '2024-05-31T08:15:42.123456+00:00');
  assert.equal(storageText(utc), '2024-05-31 08:15:42.123456');
  const paris = wallTime(micros, 'Europe/Paris');
  assert.equal(isoformat(paris, ''), '2024-05-31T10:15:42.123456');
  const whole = wallTime(1717143342000000n);
  assert.equal(storageText(whole), '2024-05-31 08:15:42');
  assert.equal(isoformat(whole, '+00:00'), '2024-05-31T08:15:42+00:00');
  // Midnight must print as 00, not 24.
  assert.equal(isoformat(wallTime(1717113600000001n), ''), '2024-05-31T00:00:00.000001');
  assert.throws(
    () => wallTime(micros, 'Mars/Olympus'),
    (error) => isSidecastError(error, 'CONFIG_INVALID'),
  );
});

void test('each dialect reads last_login as text', () => {
  assert.equal(
    lastLoginExpression('postgres', '"last_login"', true, 'Europe/Paris'),
    `to_char("last_login" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')`,
  );
  assert.equal(
    lastLoginExpression('postgres', '"last_login"', false, 'Europe/Paris'),
    `to_char("last_login" AT TIME ZONE 'Europe/Paris', 'YYYY-MM-DD"T"HH24:MI:SS.US')`,
  );
  assert.equal(
    lastLoginExpression('mysql', '`last_login`', true, 'UTC'),
    "DATE_FORMAT(`last_login`, '%Y-%m-%dT%H:%i:%s.%f')",
  );
  assert.equal(lastLoginExpression('sqlite', '"last_login"', true, 'UTC'), '"last_login"');
});
