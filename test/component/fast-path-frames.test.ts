/**
 * The fast path seen from the wire. A raw TCP client (no WebSocket library) reads the exact byte
 * stream sidecast writes and splits it into frames itself: bursts of events leave in a few
 * coalesced writes, yet every frame holds exactly one event, in publish order, with its bytes
 * untouched; and a client that vanishes while frames are queued for it disturbs nobody else.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import {
  event,
  principal,
  startTestServer,
  tableAuthenticator,
  waitFor,
} from '../support/server.js';

interface Frame {
  readonly fin: boolean;
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Buffer;
}

/** A WebSocket client on a bare socket that keeps the raw bytes and how they arrived. */
interface WireClient {
  readonly socket: Socket;
  /** Response headers of the upgrade. */
  readonly headers: string;
  /** TCP reads after the upgrade (a coalesced write arrives in few of them). */
  readonly reads: number;
  /** Frames parsed so far from the raw bytes. */
  frames(): Frame[];
  waitForFrames(count: number, timeoutMs?: number): Promise<Frame[]>;
}

/** Splits a byte stream into complete frames; the rest must be the start of the next one. */
function parseFrames(bytes: Buffer): { frames: Frame[]; rest: number } {
  const frames: Frame[] = [];
  let offset = 0;
  for (;;) {
    if (bytes.length - offset < 2) break;
    const first = bytes[offset]!;
    const second = bytes[offset + 1]!;
    let length = second & 0x7f;
    let header = 2;
    if (length === 126) {
      if (bytes.length - offset < 4) break;
      length = bytes.readUInt16BE(offset + 2);
      header = 4;
    } else if (length === 127) {
      if (bytes.length - offset < 10) break;
      length = Number(bytes.readBigUInt64BE(offset + 2));
      header = 10;
    }
    const masked = (second & 0x80) !== 0;
    if (masked) header += 4;
    if (bytes.length - offset < header + length) break;
    frames.push({
      fin: (first & 0x80) !== 0,
      rsv: (first >> 4) & 0x07,
      opcode: first & 0x0f,
      masked,
      payload: bytes.subarray(offset + header, offset + header + length),
    });
    offset += header + length;
  }
  return { frames, rest: bytes.length - offset };
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  assert.ok(payload.length < 126);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** Upgrades like a browser (offering permessage-deflate), then sends the token. */
async function wireClient(url: string, token: string): Promise<WireClient> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(
    `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n',
  );
  let buffered = Buffer.alloc(0);
  let headers = '';
  let reads = 0;
  const waiters: (() => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (!headers) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      headers = buffered.subarray(0, end).toString('latin1');
      buffered = buffered.subarray(end + 4);
      for (const wake of waiters.splice(0)) wake();
      return;
    }
    reads++;
    for (const wake of waiters.splice(0)) wake();
  });
  while (!headers) await new Promise<void>((resolve) => waiters.push(resolve));
  assert.match(headers, /^HTTP\/1\.1 101 /);
  socket.write(maskedTextFrame(token));
  const frames = () => parseFrames(buffered).frames;
  return {
    socket,
    headers,
    get reads() {
      return reads;
    },
    frames,
    async waitForFrames(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (frames().length < count) {
        if (Date.now() > deadline) throw new Error(`got ${frames().length} of ${count} frames`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return frames();
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
