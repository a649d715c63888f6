/**
 * The Django proxy against endpoints that misbehave (real HTTP servers, real clients): a slow,
 * failing or unreachable endpoint closes the client with 1013 and is asked once, never again for
 * that attempt; a malformed answer or a 401 is a refusal; concurrent questions about one user
 * share one request, answers are reused for --permissions-refresh, and batches hold at most 500 users.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { withProxyPermissions } from '../../src/auth/proxy/authenticator.js';
import { createDjangoProxy, PERMISSIONS_BATCH } from '../../src/auth/proxy/client.js';
import { isSidecastError } from '../../src/errors.js';
import { closeOf, connectClient } from '../support/client.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

type Handler = (body: unknown, request: IncomingMessage, response: ServerResponse) => void;

interface Endpoint {
  readonly url: string;
  readonly bodies: unknown[];
  close(): Promise<void>;
}

async function endpoint(handler: Handler): Promise<Endpoint> {
  const bodies: unknown[] = [];
  const server: Server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      const body: unknown = JSON.parse(text);
      bodies.push(body);
      handler(body, request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/permissions/`,
    bodies,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** Every user asked about may see content type 7. */
const answerAll: Handler = (body, _request, response) => {
  const ids = (body as { user_ids: string[] }).user_ids;
  const users = Object.fromEntries(
    ids.map((id) => [id, { is_active: true, content_type_ids: [7] }]),
  );
  setTimeout(() => json(response, 200, { users }), 50);
};

const proxyOptions = (url: string) => ({
  authUrl: '',
  permissionsUrl: url,
  secret: 's3cret',
  timeoutMs: 300,
  cacheMs: 60_000,
});

describe('the Django proxy against misbehaving endpoints', () => {
  const endpoints: Endpoint[] = [];
  const apps: Sidecast[] = [];
  after(async () => {
    for (const app of apps) await app.close();
    for (const one of endpoints) await one.close();
  });

  async function serverWith(handler: Handler, cacheMs = 60_000) {
    const one = await endpoint(handler);
    endpoints.push(one);
    const proxy = createDjangoProxy({ ...proxyOptions(one.url), cacheMs });
    const authenticator = withProxyPermissions(
      tableAuthenticator({ alice: principal('1', []), bob: principal('2', []) }),
      proxy,
    );
    const app = await startTestServer([], { authenticator });
    apps.push(app);
    return { app, endpoint: one };
  }

  const TRY_AGAIN = { code: 1013, reason: 'try again later' };
  const REFUSED = { code: 1011, reason: 'authentication failed' };

  test('a hanging endpoint: 1013 after the timeout, asked once', async () => {
    const { app, endpoint: one } = await serverWith(() => undefined);
    const started = Date.now();
    assert.deepEqual(await closeOf(await connectClient(app.url, 'alice')), TRY_AGAIN);
    assert.ok(Date.now() - started < 3000, 'bounded by the proxy timeout');
    assert.equal(one.bodies.length, 1);
  });

  test('a failing endpoint (500) is 1013; 401, 403 and malformed answers are refusals', async () => {
    const cases: [Handler, { code: number; reason: string }][] = [
      [(_b, _q, response) => json(response, 500, {}), TRY_AGAIN],
      [(_b, _q, response) => json(response, 302, {}), TRY_AGAIN],
      [(_b, _q, response) => json(response, 401, {}), REFUSED],
      [(_b, _q, response) => json(response, 403, {}), REFUSED],
      [(_b, _q, response) => response.end('not json'), REFUSED],
      [(_b, _q, response) => json(response, 200, { users: [] }), REFUSED],
      [(_b, _q, response) => json(response, 200, { users: {} }), REFUSED],
      [(_b, _q, response) => json(response, 200, { users: { 1: { is_active: 'yes' } } }), REFUSED],
      [
        (_b, _q, response) =>
          json(response, 200, { users: { 1: { is_active: true, content_type_ids: ['7'] } } }),
        REFUSED,
      ],
      [(_b, _q, response) => json(response, 200, { users: { 1: null } }), REFUSED],
      [
        (_b, _q, response) =>
          json(response, 200, { users: { 1: { is_active: false, content_type_ids: [7] } } }),
        REFUSED,
      ],
    ];
    for (const [handler, expected] of cases) {
      const { app } = await serverWith(handler);
      assert.deepEqual(await closeOf(await connectClient(app.url, 'alice')), expected);
    }
  });

  test('the shared secret is sent; the answer decides what the client receives', async () => {
    let authorization: string | undefined;
    const { app } = await serverWith((body, request, response) => {
      authorization = request.headers.authorization;
      answerAll(body, request, response);
    });
    const client = await connectClient(app.url, 'alice');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'live');
    assert.equal(authorization, 'Bearer s3cret');
    await app.bus.publish(event(3));
    await app.bus.publish(event(7));
    const [received] = await client.waitForMessages(1);
    assert.equal(JSON.parse(received!).content_type_id, 7);
    client.ws.terminate();
  });

  test('concurrent connections of one user share one request; answers are then reused', async () => {
    const { app, endpoint: one } = await serverWith(answerAll);
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => connectClient(app.url, 'bob')),
    );
    await waitFor(() => app.server.liveConnectionCount === 8, 5000, 'all live');
    assert.deepEqual(one.bodies, [{ user_ids: ['2'] }]);
    const later = await connectClient(app.url, 'bob');
    await waitFor(() => app.server.liveConnectionCount === 9, 5000, 'one more live');
    assert.equal(one.bodies.length, 1, 'cached');
    for (const client of [...clients, later]) client.ws.terminate();
  });

  test('without a cache every connection asks again', async () => {
    const { app, endpoint: one } = await serverWith(answerAll, 0);
    const first = await connectClient(app.url, 'bob');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'live');
    const second = await connectClient(app.url, 'bob');
    await waitFor(() => app.server.liveConnectionCount === 2, 5000, 'live');
    assert.equal(one.bodies.length, 2);
    first.ws.terminate();
    second.ws.terminate();
  });

  test('many users are asked about in batches of at most 500', async () => {
    const one = await endpoint(answerAll);
    endpoints.push(one);
    const proxy = createDjangoProxy(proxyOptions(one.url));
    const ids = Array.from({ length: 1201 }, (_, i) => String(i + 1));
    const answers = await proxy.permissionsOf(ids);
    assert.equal(answers.size, 1201);
    assert.deepEqual(
      one.bodies.map((body) => (body as { user_ids: string[] }).user_ids.length),
      [PERMISSIONS_BATCH, PERMISSIONS_BATCH, 201],
    );
    assert.deepEqual([...answers.get('1201')!.contentTypeIds], [7]);
  });

  test('an unreachable endpoint rejects AUTH_UNAVAILABLE', async () => {
    const one = await endpoint(answerAll);
    await one.close();
    const proxy = createDjangoProxy(proxyOptions(one.url));
    await assert.rejects(proxy.permissionsOf(['1']), (error) =>
      isSidecastError(error, 'AUTH_UNAVAILABLE'),
    );
  });

  test('re-checks ask the endpoint afresh: permissions in place, inactive users revoked', async () => {
    let answer: Record<string, unknown> = { is_active: true, content_type_ids: [7] };
    const { app, endpoint: one } = await serverWith((body, _request, response) => {
      const ids = (body as { user_ids: string[] }).user_ids;
      json(response, 200, { users: Object.fromEntries(ids.map((id) => [id, answer])) });
    });
    const alice = await connectClient(app.url, 'alice');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'live');
    answer = { is_active: true, content_type_ids: [8] };
    await app.bus.control.publish('{"type":"users","ids":["1"]}');
    await app.server.permissionsSettled();
    assert.equal(one.bodies.length, 2, 'asked again, whatever was cached');
    await app.bus.publish(event(7, { n: 1 }));
    await app.bus.publish(event(8, { n: 2 }));
    assert.deepEqual(await alice.waitForMessages(1), [event(8, { n: 2 })]);
    // A group cannot be resolved by the endpoint: every live user is asked about.
    answer = { is_active: false, content_type_ids: [] };
    await app.bus.control.publish('{"type":"groups","ids":["3"]}');
    assert.deepEqual(await closeOf(alice), { code: 1008, reason: 'access revoked' });
    assert.deepEqual(one.bodies.at(-1), { user_ids: ['1'] });
  });
});
