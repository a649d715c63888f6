/**
 * The WebSocket client of the tests, built on `ws` as a Node service would connect: it sends the
 * token as the first message, as the guide's browser code does, and records every frame it
 * receives and how the connection ended. (test/support/raw-websocket.ts is for what no library
 * would send: malformed handshakes and frames, peers that stop reading.)
 */
import { once } from 'node:events';
import WebSocket, { type RawData } from 'ws';
import type { Sidecast } from '../../src/app.js';
import { waitFor } from './wait.js';

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export interface TestClient {
  readonly ws: WebSocket;
  /** The client end's port, to tell which server process holds the other end. */
  readonly localPort: number;
  /** Text frames received, decoded, in order. */
  readonly messages: string[];
  /** The same text frames as the bytes that arrived, for byte-exact comparisons. */
  readonly frames: Buffer[];
  /** Binary frames received: counted, not kept (sidecast only ever sends text). */
  readonly binaryFrames: number;
  readonly closed: Promise<CloseInfo>;
  /** The first `count` messages, once they have arrived (rejects after `timeoutMs`). */
  waitForMessages(count: number, timeoutMs?: number): Promise<string[]>;
  /** The first `count` text frames as bytes, once they have arrived. */
  waitForFrames(count: number, timeoutMs?: number): Promise<Buffer[]>;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Opens a connection (with extra handshake `headers`, such as Origin, and the subprotocols it
 * offers, if any) and, when `token` is given, sends it as the first message. Resolves once the
 * connection is open; authentication is async.
 */
export async function connectClient(
  url: string,
  token?: string,
  headers: Record<string, string> = {},
  protocols: readonly string[] = [],
): Promise<TestClient> {
  const ws = new WebSocket(url, [...protocols], { headers });
  const messages: string[] = [];
  const frames: Buffer[] = [];
  let binaryFrames = 0;
  let localPort = 0;
  ws.on('upgrade', (response) => (localPort = response.socket.localPort ?? 0));
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      binaryFrames++;
      return;
    }
    const frame = toBuffer(data);
    frames.push(frame);
    messages.push(frame.toString());
  });
  const closed = new Promise<CloseInfo>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  // A refused handshake rejects the wait for 'open' below; a later error shows in `closed`, and
  // without a listener it would crash the run.
  ws.on('error', () => undefined);
  await once(ws, 'open');
  if (token !== undefined) ws.send(token);

  const arrived = (count: number, timeoutMs: number) =>
    waitFor(
      () => messages.length >= count,
      timeoutMs,
      () => `${count} messages, got ${messages.length}: ${JSON.stringify(messages)}`,
    );

  return {
    ws,
    get localPort() {
      return localPort;
    },
    messages,
    frames,
    get binaryFrames() {
      return binaryFrames;
    },
    closed,
    async waitForMessages(count, timeoutMs = 10_000) {
      await arrived(count, timeoutMs);
      return messages.slice(0, count);
    },
    async waitForFrames(count, timeoutMs = 10_000) {
      await arrived(count, timeoutMs);
      return frames.slice(0, count);
    },
  };
}

/**
 * Connects with `token` and resolves once the server counts one more live (authenticated)
 * connection than before.
 */
export async function liveClient(
  app: Pick<Sidecast, 'url' | 'server'>,
  token: string,
  timeoutMs = 5000,
): Promise<TestClient> {
  const before = app.server.liveConnectionCount;
  const client = await connectClient(app.url, token);
  await waitFor(() => app.server.liveConnectionCount > before, timeoutMs, 'client to go live');
  return client;
}

/** Resolves with the close the server sent, or rejects if it keeps the connection open. */
export async function closeOf(client: TestClient, timeoutMs = 10_000): Promise<CloseInfo> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error('the server did not close the connection')),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([client.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The HTTP status a WebSocket upgrade with these handshake `headers` is refused with (and its
 * Retry-After, if any), or 101 if the connection opens; an opened one is closed at once.
 */
export function upgradeStatus(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; retryAfter?: string }> {
  const ws = new WebSocket(url, { headers });
  ws.on('error', () => undefined);
  return new Promise((resolve) => {
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('unexpected-response', (_request, response) => {
      const retryAfter = response.headers['retry-after'];
      resolve({ status: response.statusCode ?? 0, ...(retryAfter ? { retryAfter } : {}) });
      response.resume();
    });
  });
}
