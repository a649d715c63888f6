import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  closeOf,
  ERRORS,
  exitCodeOf,
  headersOf,
  isSidecastError,
  SidecastError,
  statusOf,
  type ErrorKind,
} from '../../src/errors.js';

const KINDS = Object.keys(ERRORS) as ErrorKind[];

describe('the error table', () => {
  it('gives each error its public code, status and close from the kind alone', () => {
    const error = new SidecastError('EVENT_TOO_LARGE', 'too big');
    assert.equal(error.kind, 'EVENT_TOO_LARGE');
    assert.equal(error.code, 'PUBLISH_REFUSED');
    assert.equal(error.status, 413);
    assert.equal(error.closeCode, undefined);
    const failed = new SidecastError('AUTH_FAILED', 'bad token');
    assert.equal(failed.code, 'AUTH_FAILED');
    assert.equal(failed.status, undefined);
    assert.deepEqual(
      { code: failed.closeCode, reason: failed.closeReason },
      { code: 1011, reason: 'authentication failed' },
    );
  });

  it('keeps PUBLISH_REFUSED as the public code of every refusal of POST /publish', () => {
    const refusals: Record<string, number> = {
      PUBLISH_DISABLED: 404,
      PUBLISH_UNAUTHORIZED: 401,
      METHOD_NOT_ALLOWED: 405,
      BODY_TOO_LARGE: 413,
      EVENT_TOO_LARGE: 413,
      UNSUPPORTED_MEDIA_TYPE: 415,
    };
    for (const [kind, status] of Object.entries(refusals)) {
      const error = new SidecastError(kind as ErrorKind, kind);
      assert.deepEqual(
        { code: error.code, status: error.status },
        { code: 'PUBLISH_REFUSED', status },
      );
    }
  });

  it('names the public code after the kind unless the table says otherwise', () => {
    for (const kind of KINDS) {
      const spec = ERRORS[kind] as { readonly code?: string };
      assert.equal(new SidecastError(kind, '').code, spec.code ?? kind);
      // A public code that is another kind's name would make isSidecastError ambiguous.
      if (spec.code !== undefined) assert.ok(!KINDS.includes(spec.code as ErrorKind), kind);
    }
  });

  it('matches an error by its kind or by its public code', () => {
    const error = new SidecastError('BODY_TOO_LARGE', 'too big');
    assert.ok(isSidecastError(error, 'BODY_TOO_LARGE'));
    assert.ok(isSidecastError(error, 'PUBLISH_REFUSED'));
    assert.ok(!isSidecastError(error, 'EVENT_TOO_LARGE'));
    assert.ok(!isSidecastError(new Error('plain'), 'INTERNAL'));
  });

  it('exits 2 for a usage error and 1 for any other failure', () => {
    for (const kind of KINDS) {
      assert.equal(exitCodeOf(new SidecastError(kind, '')), kind === 'CONFIG_INVALID' ? 2 : 1);
    }
  });

  it('tells the status, headers and close of the refusals the server sends', () => {
    assert.equal(statusOf('ORIGIN_NOT_ALLOWED'), 403);
    assert.equal(statusOf('MAX_CONNECTIONS'), 503);
    assert.deepEqual(headersOf('MAX_CONNECTIONS'), { 'Retry-After': '1' });
    assert.deepEqual(headersOf('BUS_UNAVAILABLE'), {});
    assert.deepEqual(headersOf('PUBLISH_UNAUTHORIZED'), { 'www-authenticate': 'Bearer' });
    assert.deepEqual(closeOf('AUTH_UNAVAILABLE'), { code: 1013, reason: 'try again later' });
    assert.deepEqual(closeOf('DRAINING'), { code: 1001, reason: 'server shutting down' });
  });

  it('keeps the cause it is given', () => {
    const cause = new Error('socket closed');
    assert.equal(new SidecastError('BUS_UNAVAILABLE', 'down', { cause }).cause, cause);
    assert.equal('cause' in new SidecastError('BUS_UNAVAILABLE', 'down'), false);
  });
});
