/**
 * The fast path seen from the wire. A raw TCP client (no WebSocket library) reads the exact byte
 * stream sidecast writes and splits it into frames itself: bursts of events leave in a few
 * coalesced writes, yet every frame holds exactly one event, in publish order, with its bytes
 * untouched; and a client that vanishes while frames are queued for it disturbs nobody else.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { openRawWebSocket, type Frame } from '../support/raw-websocket.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

/** A WebSocket client on a bare socket that keeps the raw bytes and how they arrived. */
interface WireClient {
  readonly socket: Socket;
  /** Response headers of the upgrade. */
  readonly headers: string;
  /** TCP reads after the upgrade (a coalesced write arrives in few of them). */
  readonly reads: number;
  /** Every frame received so far, once there are at least `count`. */
  waitForFrames(count: number, timeoutMs?: number): Promise<Frame[]>;
}

/** Upgrades like a browser (offering permessage-deflate), then sends the token. */
async function wireClient(url: string, token: string): Promise<WireClient> {
  const raw = await openRawWebSocket(Number(new URL(url).port), {
    extensions: 'permessage-deflate; client_max_window_bits',
  });
  let reads = 0;
  raw.socket.on('data', () => reads++);
  const frames = raw.read();
  raw.send(token);
  return {
    socket: raw.socket,
    headers: raw.head,
    get reads() {
      return reads;
    },
    async waitForFrames(count, timeoutMs = 5000) {
      const what = () => `${count} frames, got ${frames.length}`;
      await waitFor(() => frames.length >= count, timeoutMs, what);
      return [...frames];
    },
  };
}

function assertPlainTextFrames(frames: readonly Frame[], expected: readonly string[]): void {
  assert.equal(frames.length, expected.length, 'one frame per event, none merged or split');
  frames.forEach((frame, i) => {
    assert.ok(frame.fin && frame.opcode === 1 && frame.rsv === 0 && !frame.masked, `frame ${i}`);
    assert.equal(frame.payload.toString('utf8'), expected[i], `frame ${i} holds event ${i}`);
  });
}

describe('fast path on the wire', () => {
  let app: Sidecast;
  const authenticator = tableAuthenticator({
    books: principal('1', [2]),
    authors: principal('2', [3]),
    both: principal('3', [2, 3]),
    ...Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [`crowd-${i}`, principal(`c${i}`, [5])]),
    ),
  });

  before(async () => {
    app = await startTestServer([], { authenticator });
  });
  after(() => app.close());

  it('coalesces a burst into few writes, one intact frame per event, in order', async () => {
    const clients = {
      books: await wireClient(app.url, 'books'),
      authors: await wireClient(app.url, 'authors'),
      both: await wireClient(app.url, 'both'),
    };
    await waitFor(() => app.server.liveConnectionCount === 3, 5000, 'three live connections');
    for (const client of Object.values(clients))
      assert.doesNotMatch(client.headers, /sec-websocket-extensions/i, 'no deflate negotiated');

    const events: { contentType: number; payload: string }[] = [];
    for (let i = 0; i < 300; i++) {
      const contentType = [2, 3, 2, 99][i % 4]!;
      // Sizes cross every frame-length encoding: 7-bit, 16-bit and 64-bit lengths.
      const padding = i === 150 ? 70_000 : i % 7 === 0 ? 200 : 0;
      events.push({ contentType, payload: event(contentType, { n: i, pad: 'p'.repeat(padding) }) });
    }
    // Published back to back: the memory bus hands them over in the same event-loop turn.
    await Promise.all(events.map((e) => app.bus.publish(e.payload)));

    const want = (ids: number[]) =>
      events.filter((e) => ids.includes(e.contentType)).map((e) => e.payload);
    const expected = { books: want([2]), authors: want([3]), both: want([2, 3]) };
    for (const [name, client] of Object.entries(clients)) {
      const wanted = expected[name as keyof typeof expected];
      const frames = await client.waitForFrames(wanted.length);
      assertPlainTextFrames(frames, wanted);
      assert.ok(
        client.reads * 4 <= frames.length,
        `${name}: ${frames.length} frames arrived in ${client.reads} reads: writes were coalesced`,
      );
    }
    for (const client of Object.values(clients)) client.socket.destroy();
  });

  it('keeps publish order across many small turns', async () => {
    const client = await wireClient(app.url, 'both');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'one live connection');
    const payloads: string[] = [];
    for (let i = 0; i < 60; i++) {
      payloads.push(event(i % 2 === 0 ? 2 : 3, { n: i }));
      await app.bus.publish(payloads[i]!);
      if (i % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    assertPlainTextFrames(await client.waitForFrames(60), payloads);
    client.socket.destroy();
  });

  it('skips clients that vanish while frames are queued for them; the others get everything', async () => {
    const crowd = await Promise.all(
      Array.from({ length: 20 }, (_, i) => wireClient(app.url, `crowd-${i}`)),
    );
    await waitFor(() => app.server.liveConnectionCount === 20, 5000, 'twenty live connections');
    const first = Array.from({ length: 40 }, (_, i) => event(5, { n: i }));
    const publishing = Promise.all(first.map((payload) => app.bus.publish(payload)));
    // Half the crowd resets its connection while the burst is queued on the server.
    const leaving = crowd.filter((_, i) => i % 2 === 1);
    for (const client of leaving) client.socket.resetAndDestroy();
    await publishing;
    const second = Array.from({ length: 40 }, (_, i) => event(5, { n: 40 + i }));
    for (const payload of second) await app.bus.publish(payload);

    const staying = crowd.filter((_, i) => i % 2 === 0);
    for (const client of staying)
      assertPlainTextFrames(await client.waitForFrames(80), [...first, ...second]);
    await waitFor(() => app.server.liveConnectionCount === 10, 5000, 'the leavers unregistered');
    for (const client of staying) client.socket.destroy();
  });
});
