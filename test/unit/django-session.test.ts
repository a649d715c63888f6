import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSessionKey, readCookie } from '../../src/auth/session/cookie.js';
import { readSessionSettings } from '../../src/auth/session/settings.js';
import { b62Decode, loadSignedObject } from '../../src/django/signing.js';
import { keyFromText } from '../../src/django/values.js';

void test('the session cookie is read as django.http.cookie.parse_cookie reads it', () => {
  assert.equal(readCookie('a=1; sessionid=abc; b=2', 'sessionid'), 'abc');
  assert.equal(readCookie('sessionid=first; sessionid=last', 'sessionid'), 'last');
  assert.equal(readCookie('  sessionid = spaced  ', 'sessionid'), 'spaced');
  assert.equal(readCookie('sessionid="quo\\"ted\\073"', 'sessionid'), 'quo"ted;');
  assert.equal(readCookie('other=1', 'sessionid'), undefined);
  assert.equal(readCookie(undefined, 'sessionid'), undefined);
  assert.equal(readCookie(`sessionid=${'x'.repeat(20_000)}`, 'sessionid'), undefined);
  assert.equal(isSessionKey('1234567'), false);
  assert.equal(isSessionKey('12345678'), true);
});

void test('session settings: Django defaults, engines sidecast can read only', () => {
  const defaults = readSessionSettings({});
  assert.equal(defaults.storage, 'db');
  assert.equal(defaults.cookieName, 'sessionid');
  assert.equal(defaults.cookieAgeSeconds, 1209600);
  assert.deepEqual(defaults.backends, ['django.contrib.auth.backends.ModelBackend']);
  const cached = readSessionSettings({
    SESSION_ENGINE: 'django.contrib.sessions.backends.cached_db',
  });
  assert.equal(cached.storage, 'db');
  assert.throws(
    () => readSessionSettings({ SESSION_ENGINE: 'django.contrib.sessions.backends.cache' }),
    /SESSION_ENGINE/,
  );
  assert.throws(() => readSessionSettings({ SESSION_COOKIE_AGE: 'soon' }), /SESSION_COOKIE_AGE/);
});

void test('signing: base62 timestamps and refusals of malformed signed values', () => {
  assert.equal(b62Decode('0'), 0);
  assert.equal(b62Decode('1Z'), 62 + 35);
  assert.equal(b62Decode('-z'), -61);
  assert.equal(b62Decode('!'), null);
  const options = { salt: 's', secrets: ['k'], maxAgeSeconds: null, nowSeconds: 0 };
  for (const bad of ['', 'nocolon', 'a:b', 'a:b:c', `${'x'.repeat(100)}:`]) {
    assert.equal(loadSignedObject(bad, options).ok, false, bad);
  }
});

void test('keys sent as text are read as to_python reads them', () => {
  assert.equal(keyFromText('42', 'integer'), 42n);
  assert.equal(keyFromText(' +7 ', 'integer'), 7n);
  assert.equal(keyFromText('4.2', 'integer'), null);
  assert.equal(
    keyFromText('{12345678-1234-5678-1234-567812345678}', 'uuid'),
    '12345678-1234-5678-1234-567812345678',
  );
  assert.equal(keyFromText('not-a-uuid', 'uuid-hex'), null);
  assert.equal(keyFromText('alice', 'text'), 'alice');
});
