import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Authenticator, Credential } from '../../src/auth/authenticator.js';
import { chainAuthenticators } from '../../src/auth/chain.js';
import { createAuthentication } from '../../src/server/authentication.js';
import { authFailed, authUnavailable, isSidecastError } from '../../src/errors.js';
import { SERVE_OPTIONS } from '../../src/app.js';
import { parseArgs } from '../../src/config.js';
import { createLimiter } from '../../src/server/limiter.js';
import { createMetrics } from '../../src/metrics.js';
import { createLogger, createLogLimiter } from '../../src/log.js';
import { principal } from '../support/server.js';

function member(
  name: string,
  outcome: 'accept' | 'refuse' | 'unavailable',
  extra: Partial<Authenticator> = {},
): Authenticator & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async authenticate() {
      calls.push(name);
      if (outcome === 'accept') return principal(name, []);
      throw outcome === 'refuse' ? authFailed(name) : authUnavailable(name);
    },
    async check() {},
    async close() {},
    ...extra,
  };
}

const cookieOnly = (credential: Credential) => credential.headers.cookie !== undefined;
const withCookie = { token: '', headers: { cookie: 'sessionid=x' } };
const withToken = { token: 'abc', headers: {} };

void test('authenticators are tried in order and the first to accept decides', async () => {
  const first = member('session', 'refuse', { reads: 'headers', carries: cookieOnly });
  const second = member('jwt', 'accept');
  const third = member('sesame', 'accept');
  const chain = chainAuthenticators([first, second, third]);
  const result = await chain.authenticate({ token: 't', headers: { cookie: 'c' } });
  assert.equal(result.userId, 'jwt');
  assert.deepEqual([...first.calls, ...second.calls, ...third.calls], ['session', 'jwt']);
});

void test('an authenticator whose credential is absent is skipped', async () => {
  const session = member('session', 'accept', { reads: 'headers', carries: cookieOnly });
  const jwt = member('jwt', 'accept');
  const chain = chainAuthenticators([session, jwt]);
  assert.equal((await chain.authenticate(withToken)).userId, 'jwt');
  assert.equal((await chain.authenticate(withCookie)).userId, 'session');
  assert.deepEqual(session.calls, ['session']);
});

void test('every refusal: unavailable wins, so the client retries', async () => {
  const chain = chainAuthenticators([member('a', 'refuse'), member('b', 'unavailable')]);
  await assert.rejects(chain.authenticate(withToken), (error) =>
    isSidecastError(error, 'AUTH_UNAVAILABLE'),
  );
  const refused = chainAuthenticators([member('a', 'refuse'), member('b', 'refuse')]);
  await assert.rejects(refused.authenticate(withToken), (error) =>
    isSidecastError(error, 'AUTH_FAILED'),
  );
  // Nothing any of them reads: refused without asking anyone.
  await assert.rejects(refused.authenticate({ token: '', headers: {} }), (error) =>
    isSidecastError(error, 'AUTH_FAILED'),
  );
});

void test('a connection is authenticated on open when its headers are all the scheme reads', () => {
  const authentication = (authenticator: Authenticator) =>
    createAuthentication({
      authenticator,
      limiter: createLimiter(1),
      metrics: createMetrics(),
      refusalLog: createLogLimiter(createLogger('silent')),
    });
  const session = member('session', 'accept', { reads: 'headers', carries: cookieOnly });
  assert.equal(authentication(session).authenticatesOnOpen({}), true);
  assert.equal(authentication(member('sesame', 'accept')).authenticatesOnOpen({}), false);
  const mixed = authentication(chainAuthenticators([session, member('jwt', 'accept')]));
  assert.equal(mixed.authenticatesOnOpen({ cookie: 'sessionid=x' }), true);
  assert.equal(mixed.authenticatesOnOpen({}), false, 'no cookie: its token is awaited');
});

void test('--auth takes a list in order, sesame by default, each kind once', () => {
  const auth = (argv: string[]) => parseArgs(SERVE_OPTIONS, argv, {}).options.auth;
  assert.deepEqual(auth([]), ['sesame']);
  assert.deepEqual(auth(['--auth', 'session, simplejwt']), ['session', 'simplejwt']);
  assert.throws(() => auth(['--auth', 'session,session']), /twice/);
  assert.throws(() => auth(['--auth', 'cookie']), /expected one of sesame, session, simplejwt/);
  assert.throws(() => auth(['--auth', ',']), /one or more/);
});
