import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OPTIONS } from '../../src/config.js';
import { isSidecastError } from '../../src/errors.js';
import { createOriginCheck } from '../../src/server/origin.js';

describe('origin allowlist', () => {
  it('allows clients that send no Origin (non-browsers authenticate by token alone)', () => {
    assert.equal(createOriginCheck([])(undefined), true);
  });

  it('refuses every browser origin when the list is empty', () => {
    const allowed = createOriginCheck([]);
    assert.equal(allowed('http://localhost:3000'), false);
    assert.equal(allowed('null'), false);
  });

  it('by default allows only pages served from this machine', () => {
    const allowed = createOriginCheck(OPTIONS['allowed-origins'].defaultValue);
    for (const origin of ['http://localhost:8000', 'http://127.0.0.1:5173', 'http://[::1]:8080']) {
      assert.equal(allowed(origin), true, origin);
    }
    for (const origin of [
      'http://localhost',
      'https://localhost:8000',
      'http://localhost:8000.evil.test',
      'http://localhost.evil.test:8000',
      'http://127.0.0.1.evil.test:80',
      'https://example.com',
      'null',
    ]) {
      assert.equal(allowed(origin), false, origin);
    }
  });

  it('matches exact origins case-insensitively and ignores a trailing slash in the pattern', () => {
    const allowed = createOriginCheck(['https://App.Example.com/']);
    assert.equal(allowed('https://app.example.com'), true);
    assert.equal(allowed('HTTPS://APP.EXAMPLE.COM'), true);
    assert.equal(allowed('http://app.example.com'), false);
    assert.equal(allowed('https://app.example.com:8443'), false);
  });

  it('lets a wildcard stand only for host or port characters', () => {
    const allowed = createOriginCheck(['https://*.example.com', 'http://localhost:*']);
    assert.equal(allowed('https://app.example.com'), true);
    assert.equal(allowed('https://a.b.example.com'), true);
    assert.equal(allowed('https://example.com'), false, 'the wildcard needs at least one char');
    assert.equal(allowed('https://evil.test/.example.com'), false);
    assert.equal(allowed('https://evil.test?.example.com'), false);
    assert.equal(allowed('https://user@evil.test#.example.com'), false);
    assert.equal(allowed('https://evilexample.com'), false);
    assert.equal(allowed('http://localhost:1234'), true);
    assert.equal(allowed('http://localhost:1234/x'), false);
    assert.equal(allowed('http://localhost:@evil.test'), false);
  });

  it('allows opaque origins only when "null" is listed, and everything with a lone *', () => {
    assert.equal(createOriginCheck(['null'])('null'), true);
    const any = createOriginCheck(['*']);
    assert.equal(any('https://anything.test'), true);
    assert.equal(any('null'), true);
  });

  it('refuses malformed patterns at start-up instead of never matching', () => {
    for (const pattern of [
      'example.com',
      'https://example.com/path',
      'https://',
      '*.example.com',
    ]) {
      assert.throws(
        () => createOriginCheck([pattern]),
        (error: unknown) =>
          isSidecastError(error, 'CONFIG_INVALID') && /allowed-origins/.test(error.message),
        pattern,
      );
    }
  });
});
