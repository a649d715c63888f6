import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import type { Sidecast } from '../../src/app.js';
import { clientFrame, closeFrameOf, Opcode, openRawWebSocket } from '../support/raw-websocket.js';
import { connectClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

// A full collection before each measurement, so garbage does not pass for retained memory.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function externalBytes(): number {
  gc();
  return process.memoryUsage().arrayBuffers;
}

const MAX_BUFFERED = 256 * 1024;
const EVENT_BYTES = 16 * 1024;
const EVENTS = 2000; // 32 MiB in all: far more than the kernel's socket buffers can absorb
const PER_TURN = 8; // 128 KiB per event-loop turn, below --max-buffered

const authenticator = tableAuthenticator({
  'token-good': principal('good', [7]),
  'token-stalled': principal('stalled', [7]),
  'token-late': principal('late', [7]),
});

describe('slow consumers', () => {
  let app: Sidecast;
  before(async () => {
    // A connection may hold --max-buffered plus one event of up to --max-event-bytes: events here
    // are 16 KiB, so a 64 KiB event limit keeps the budget this test measures near 256 KiB.
    const flags = ['--max-buffered', String(MAX_BUFFERED), '--max-event-bytes', '65536'];
    app = await startTestServer([...flags, '--ping-interval', '0'], { authenticator });
  });
  after(() => app.close());

  it('closes a client that stops reading, bounded in memory, without delaying the others', async (t) => {
    // A well-behaved client that checks order and measures how late each event arrives.
    const good = new WebSocket(app.url);
    let received = 0;
    let worstDelayMs = 0;
    let outOfOrder = 0;
    good.on('message', (data: Buffer) => {
      const { seq, sentAt } = JSON.parse(data.toString()) as { seq: number; sentAt: number };
      if (seq !== received) outOfOrder++;
      received++;
      worstDelayMs = Math.max(worstDelayMs, Date.now() - sentAt);
    });
    await once(good, 'open');
    good.send('token-good');

    // Two clients that complete the handshake, authenticate, then stop reading their socket.
    const stalled = await openRawWebSocket(app.port);
    stalled.send('token-stalled');
    const late = await openRawWebSocket(app.port);
    late.send('token-late');
    await waitFor(() => app.server.liveConnectionCount === 3, 5000, 'three live clients');

    const baseline = externalBytes();
    let peak = 0;
    const filler = 'x'.repeat(EVENT_BYTES);
    for (let seq = 0; seq < EVENTS; seq++) {
      await app.bus.publish(
        JSON.stringify({ content_type_id: 7, seq, sentAt: Date.now(), filler }),
      );
      if (seq % PER_TURN === PER_TURN - 1) {
        await sleep(1);
        if (seq % 400 === 399) peak = Math.max(peak, externalBytes() - baseline);
      }
    }
    await waitFor(() => received === EVENTS, 20_000, 'the good client to get every event');
    peak = Math.max(peak, externalBytes() - baseline);
    const rss = process.memoryUsage().rss;
    t.diagnostic(
      `retained external memory peak ${(peak / 2 ** 20).toFixed(1)} MiB, rss ${(rss / 2 ** 20).toFixed(0)} MiB, worst delay ${worstDelayMs} ms`,
    );

    assert.equal(outOfOrder, 0);
    assert.ok(worstDelayMs < 2000, `an event reached the good client ${worstDelayMs} ms late`);
    // Unbounded, the two stalled connections would hold ~2 x 25 MiB here.
    assert.ok(peak < 8 * 2 ** 20, `${peak} bytes retained while two clients stalled`);
    assert.equal(await metric(app.port, 'sidecast_slow_consumer_closes_total'), 2);
    assert.ok(
      (await metric(app.port, 'sidecast_events_dropped_total{reason="slow_consumer"}')) >= 2,
    );
    assert.equal(app.server.liveConnectionCount, 1);

    // The late reader catches up within the grace period and finds the documented close frame.
    const frames = late.read();
    await waitFor(() => frames.at(-1)?.opcode === Opcode.close, 10_000, 'the close frame');
    assert.deepEqual(closeFrameOf(frames.at(-1)!), { code: 1008, reason: 'slow consumer' });
    const texts = frames.filter((frame) => frame.opcode === Opcode.text);
    assert.ok(texts.length > 0 && texts.length < EVENTS, `${texts.length} events before closing`);
    texts.forEach((frame, index) =>
      assert.equal((JSON.parse(frame.payload.toString()) as { seq: number }).seq, index),
    );

    // The one that never reads again is dropped when the grace period ends.
    await waitFor(() => app.server.connectionCount === 1, 10_000, 'the stalled client dropped');
    stalled.socket.destroy();
    late.socket.destroy();
    const goodClosed = once(good, 'close');
    good.close();
    await goodClosed;
  });

  it('drops a client that floods pings while never reading the pongs', async (t) => {
    // --ping-interval is 0 here, so keepalive cannot be what ends this connection.
    const watcher = await connectClient(app.url, 'token-good');
    const flooder = await openRawWebSocket(app.port);
    flooder.send('token-stalled');
    await waitFor(() => app.server.liveConnectionCount === 2, 5000, 'two live clients');
    const baseline = externalBytes();
    const ping = clientFrame(Opcode.ping, Buffer.alloc(125, 0x61));
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    const closed = once(flooder.socket, 'close');
    let bursts = 0;
    // Up to 39 MB of pings, as many bytes of pongs owed to a socket that is never read.
    while (bursts < 300 && app.server.connectionCount === 2) {
      if (!flooder.socket.write(burst)) await Promise.race([once(flooder.socket, 'drain'), closed]);
      if (++bursts % 10 === 0) await sleep(1);
    }
    await waitFor(() => app.server.connectionCount === 1, 10_000, 'the flooder dropped');
    const retained = externalBytes() - baseline;
    t.diagnostic(
      `dropped after ${bursts} bursts of 1000 pings, ${(retained / 2 ** 20).toFixed(1)} MiB retained`,
    );
    assert.ok(bursts < 300, 'dropped before the flood ended');
    assert.ok(retained < 8 * 2 ** 20, `${retained} bytes retained`);
    const payload = JSON.stringify({ content_type_id: 7, seq: 0, sentAt: Date.now() });
    await app.bus.publish(payload);
    await waitFor(() => watcher.messages.includes(payload), 5000, 'the watcher to be served');
    flooder.socket.destroy();
    watcher.ws.close();
    await watcher.closed;
  });
});
