import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { rawExchange, upgradeRequest } from '../support/raw-websocket.js';
import { connectClient, liveClient, upgradeStatus, type TestClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { httpGet } from '../support/observe.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const authenticator = tableAuthenticator({
  'token-ann': principal('ann', [5]),
  'token-bob': principal('bob', [5]),
});

/** Proves `client` still gets events: publishes one and waits for it. */
async function stillReceives(app: Sidecast, client: TestClient, marker: string): Promise<void> {
  const payload = event(5, { marker });
  const seen = client.messages.length;
  await app.bus.publish(payload);
  const messages = await client.waitForMessages(seen + 1);
  assert.equal(messages[seen], payload);
}

describe('handshake checks: origins, limits, malformed requests', () => {
  const apps: Sidecast[] = [];
  after(() => Promise.all(apps.map((app) => app.close())));

  async function start(flags: string[]): Promise<Sidecast> {
    const app = await startTestServer(flags, { authenticator });
    apps.push(app);
    return app;
  }

  it('refuses browsers from other origins with 403 before the WebSocket opens', async () => {
    const app = await start(['--allowed-origins', 'https://*.example.com,https://app.test']);
    const watcher = await liveClient(app, 'token-ann');
    assert.equal((await upgradeStatus(app.url, { Origin: 'https://evil.test' })).status, 403);
    assert.equal((await upgradeStatus(app.url, { Origin: 'http://localhost:3000' })).status, 403);
    assert.equal((await upgradeStatus(app.url, { Origin: 'https://www.example.com' })).status, 101);
    assert.equal((await upgradeStatus(app.url, { Origin: 'https://app.test' })).status, 101);
    assert.equal((await upgradeStatus(app.url)).status, 101, 'non-browser clients send no Origin');
    assert.equal(await metric(app.port, 'sidecast_connections_refused_total{reason="origin"}'), 2);
    await stillReceives(app, watcher, 'after refusals');
    watcher.ws.close();
  });

  it('by default accepts pages from this machine only', async () => {
    const app = await start([]);
    assert.equal((await upgradeStatus(app.url, { Origin: 'http://localhost:8000' })).status, 101);
    assert.equal((await upgradeStatus(app.url, { Origin: 'https://example.com' })).status, 403);
  });

  it('refuses upgrades past --max-connections with 503 and Retry-After, and recovers', async () => {
    const app = await start(['--max-connections', '3']);
    const clients = [
      await liveClient(app, 'token-ann'),
      await liveClient(app, 'token-bob'),
      await liveClient(app, 'token-bob'),
    ];
    assert.deepEqual(await upgradeStatus(app.url), { status: 503, retryAfter: '1' });
    await stillReceives(app, clients[0]!, 'at the limit');
    clients[2]!.ws.close();
    await clients[2]!.closed;
    await waitFor(() => app.server.connectionCount === 2, 5000, 'a free slot');
    assert.equal((await upgradeStatus(app.url)).status, 101);
    assert.equal(
      await metric(app.port, 'sidecast_connections_refused_total{reason="max_connections"}'),
      1,
    );
    for (const client of clients.slice(0, 2)) client.ws.close();
  });

  it('closes connections past --max-connections-per-user with 1008', async () => {
    const app = await start(['--max-connections-per-user', '2']);
    const first = await liveClient(app, 'token-ann');
    const second = await liveClient(app, 'token-ann');
    const third = await connectClient(app.url, 'token-ann');
    assert.deepEqual(await third.closed, {
      code: 1008,
      reason: 'too many connections for this user',
    });
    const bob = await liveClient(app, 'token-bob');
    await stillReceives(app, first, 'per-user');
    first.ws.close();
    await first.closed;
    await waitFor(() => app.server.liveConnectionCount === 2, 5000, 'ann to be at one');
    const again = await liveClient(app, 'token-ann');
    await stillReceives(app, again, 'room again');
    for (const client of [second, bob, again]) client.ws.close();
  });

  it('answers malformed upgrade requests with 4xx and stays responsive', async () => {
    const app = await start(['--auth-timeout', '1']);
    const watcher = await liveClient(app, 'token-ann');
    const port = app.port;
    const badKey = await rawExchange(port, upgradeRequest(port, { key: 'not-a-key' }));
    assert.equal(badKey.status, 400);
    const badVersion = await rawExchange(port, upgradeRequest(port, { version: '12' }));
    assert.equal(badVersion.status, 400);
    assert.match(badVersion.text, /Sec-WebSocket-Version: 13, 8/i);
    const post = await rawExchange(port, upgradeRequest(port, { method: 'POST' }));
    assert.equal(post.status, 405);
    const garbage = await rawExchange(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0, 1, 2]));
    assert.equal(garbage.status, 400);
    const noHost = await rawExchange(port, 'GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n');
    assert.equal(noHost.status, 400);
    assert.equal(
      await metric(port, 'sidecast_connections_refused_total{reason="bad_handshake"}'),
      3,
    );

    // Half-sent headers hold a socket for --auth-timeout at most, not Node's default minute.
    const started = Date.now();
    const slow = connect(port, '127.0.0.1');
    slow.on('error', () => undefined);
    await once(slow, 'connect');
    slow.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n');
    slow.resume();
    await once(slow, 'close');
    assert.ok(Date.now() - started < 5000, `dropped after ${Date.now() - started} ms`);

    assert.equal((await httpGet(port, '/healthz')).status, 200);
    await stillReceives(app, watcher, 'after malformed');
    watcher.ws.close();
  });
});
