import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { Sidecast } from '../../src/app.js';
import {
  clientFrame,
  closeFrameOf,
  Opcode,
  openRawWebSocket,
  type Frame,
  type RawWebSocket,
} from '../support/raw-websocket.js';
import { connectClient, liveClient, type TestClient } from '../support/client.js';
import { metric, metricReaches } from '../support/metrics.js';
import { httpGet } from '../support/observe.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const authenticator = tableAuthenticator({
  'token-a': principal('1', [7]),
  'token-b': principal('2', [7]),
  'token-watch': principal('3', [7]),
});

/** Publishes `count` numbered events on content type 7 while `during` runs; returns them. */
async function publishDuring(app: Sidecast, count: number, during: Promise<unknown>) {
  const sent: string[] = [];
  for (let i = 0; i < count; i++) {
    const payload = event(7, { seq: i });
    sent.push(payload);
    await app.bus.publish(payload);
    await sleep(5);
  }
  await during;
  return sent;
}

/** Collects server frames from a raw socket until it closes. */
async function readFrames(raw: RawWebSocket): Promise<Frame[]> {
  const closed = once(raw.socket, 'close');
  const frames = raw.read();
  await closed;
  return frames;
}

describe('hostile and broken clients', () => {
  let app: Sidecast;
  // A well-behaved client connected throughout: every hostile case must leave it served.
  let watcher: TestClient;

  before(async () => {
    app = await startTestServer(['--auth-timeout', '0.5', '--ping-interval', '0.25'], {
      authenticator,
    });
    watcher = await liveClient(app, 'token-watch');
  });
  afterEach(async () => {
    assert.equal((await httpGet(app.port, '/healthz')).status, 200);
    const payload = event(7, { check: watcher.messages.length });
    const seen = watcher.messages.length;
    await app.bus.publish(payload);
    assert.equal((await watcher.waitForMessages(seen + 1))[seen], payload);
    assert.equal(watcher.ws.readyState, WebSocket.OPEN);
  });
  after(() => app.close());

  it('closes a flood of connections that never authenticate, while others keep receiving', async () => {
    const port = app.port;
    const seen = watcher.messages.length;
    const flood: Promise<{ code: number; reason: string }>[] = [];
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 300; i++) {
      const ws = new WebSocket(app.url);
      ws.on('error', () => undefined);
      sockets.push(ws);
      flood.push(
        new Promise((resolve) =>
          ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
        ),
      );
    }
    const health = await httpGet(port, '/healthz');
    assert.equal(health.status, 200, 'the server answers during the flood');
    const sent = await publishDuring(app, 40, Promise.all(flood));
    const closes = await Promise.all(flood);
    assert.equal(closes.length, 300);
    for (const close of closes) {
      assert.deepEqual(close, { code: 1008, reason: 'authentication timeout' });
    }
    assert.deepEqual((await watcher.waitForMessages(seen + sent.length)).slice(seen), sent);
    await waitFor(() => app.server.connectionCount === 1, 5000, 'the flood to be gone');
    assert.equal(await metric(port, 'sidecast_authentications_total{outcome="timeout"}'), 300);
    assert.equal(await metric(port, 'sidecast_connections'), 1);
  });

  it('refuses a first message larger than 4 KiB with 1009', async () => {
    const client = await connectClient(app.url, 'x'.repeat(4097));
    assert.equal((await client.closed).code, 1009);
  });

  it('refuses a binary first message with 1003', async () => {
    const client = await connectClient(app.url);
    client.ws.send(Buffer.from('token-a'));
    assert.deepEqual(await client.closed, {
      code: 1003,
      reason: 'binary messages are not accepted',
    });
  });

  it('ignores text from an authenticated client, refuses its binary and oversized frames', async () => {
    const chatty = await liveClient(app, 'token-a');
    const binary = await liveClient(app, 'token-b');
    const oversized = await liveClient(app, 'token-b');
    for (let i = 0; i < 200; i++) chatty.ws.send(`noise ${i}`);
    binary.ws.send(Buffer.alloc(10));
    oversized.ws.send('y'.repeat(5000));
    assert.equal((await binary.closed).code, 1003);
    assert.equal((await oversized.closed).code, 1009);
    const payload = event(7, { after: 'noise' });
    await app.bus.publish(payload);
    assert.deepEqual(await chatty.waitForMessages(1), [payload]);
    assert.equal(chatty.ws.readyState, WebSocket.OPEN);
    chatty.ws.close();
    await chatty.closed;
  });

  it('answers protocol violations with their close codes: invalid UTF-8 1007, unmasked 1002', async () => {
    const utf8 = await openRawWebSocket(app.port);
    utf8.socket.write(clientFrame(Opcode.text, Buffer.from([0x74, 0xff, 0xfe])));
    const utf8Frames = await readFrames(utf8);
    assert.equal(closeFrameOf(utf8Frames.at(-1)!).code, 1007);

    const unmasked = await openRawWebSocket(app.port);
    unmasked.socket.write(clientFrame(Opcode.text, 'token-a', { mask: false }));
    const unmaskedFrames = await readFrames(unmasked);
    assert.equal(closeFrameOf(unmaskedFrames.at(-1)!).code, 1002);
  });

  it('drops a peer that stops answering pings, and keeps one that answers', async () => {
    const port = app.port;
    const before = await metric(port, 'sidecast_keepalive_timeouts_total');
    const healthy = await liveClient(app, 'token-a');
    const dead = await openRawWebSocket(port);
    dead.send('token-b');
    // A raw socket never answers pings on its own, as with a peer that vanished.
    await waitFor(() => app.server.liveConnectionCount === 3, 5000, 'the silent peer to go live');
    const closed = once(dead.socket, 'close');
    dead.socket.on('data', () => undefined);
    dead.socket.resume();
    await waitFor(() => app.server.liveConnectionCount === 2, 5000, 'the dead peer to be dropped');
    await closed;
    assert.equal(
      await metricReaches(port, 'sidecast_keepalive_timeouts_total', before + 1),
      before + 1,
    );
    // The healthy client went through several ping rounds and still receives.
    await sleep(600);
    const payload = event(7, { still: 'here' });
    await app.bus.publish(payload);
    assert.deepEqual(await healthy.waitForMessages(1), [payload]);
    healthy.ws.close();
    await healthy.closed;
  });
});
