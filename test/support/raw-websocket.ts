import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * WebSocket at the byte level, for tests of clients no library would produce: malformed
 * handshakes, unmasked or oversized frames, peers that stop reading or never answer pings, and
 * for reading the exact bytes the server writes. (A well-behaved client is test/support/client.ts.)
 */

export interface Frame {
  readonly fin: boolean;
  /** The three reserved bits; non-zero only when an extension such as deflate is in use. */
  readonly rsv: number;
  readonly opcode: number;
  /** Whether the frame carries a masking key (a server must never send one). */
  readonly masked: boolean;
  /** The payload as sent, still masked if `masked`. */
  readonly payload: Buffer;
}

export const Opcode = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** A client frame: masked, as RFC 6455 requires of clients (unless `mask` is false). */
export function clientFrame(
  opcode: number,
  payload: Buffer | string,
  { mask = true, fin = true }: { mask?: boolean; fin?: boolean } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const lengthBytes = data.length < 126 ? 0 : data.length < 65536 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | opcode;
  header[1] = (mask ? 0x80 : 0) | (lengthBytes === 0 ? data.length : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) header.writeUInt16BE(data.length, 2);
  if (lengthBytes === 8) header.writeBigUInt64BE(BigInt(data.length), 2);
  if (!mask) return Buffer.concat([header, data]);
  const key = randomBytes(4);
  key.copy(header, 2 + lengthBytes);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i & 3]!;
  return Buffer.concat([header, masked]);
}

/** Splits a server byte stream into frames; feed it chunks as they arrive. */
export function createFrameParser() {
  let pending: Buffer = Buffer.alloc(0);
  return {
    push(chunk: Buffer): Frame[] {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const frames: Frame[] = [];
      for (;;) {
        if (pending.length < 2) break;
        const first = pending[0]!;
        const masked = (pending[1]! & 0x80) !== 0;
        let length = pending[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (pending.length < 4) break;
          length = pending.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (pending.length < 10) break;
          length = Number(pending.readBigUInt64BE(2));
          offset = 10;
        }
        if (masked) offset += 4;
        if (pending.length < offset + length) break;
        frames.push({
          fin: (first & 0x80) !== 0,
          rsv: (first >> 4) & 0x07,
          opcode: first & 0x0f,
          masked,
          payload: pending.subarray(offset, offset + length),
        });
        pending = pending.subarray(offset + length);
      }
      return frames;
    },
  };
}

export function closeFrameOf(frame: Frame): { code: number; reason: string } {
  return {
    code: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005,
    reason: frame.payload.subarray(2).toString(),
  };
}

export interface UpgradeOptions {
  path?: string;
  method?: string;
  key?: string;
  version?: string;
  origin?: string;
  /** Sec-WebSocket-Extensions to offer, as a browser offers permessage-deflate. */
  extensions?: string;
}

export function upgradeRequest(port: number, options: UpgradeOptions = {}): string {
  const lines = [
    `${options.method ?? 'GET'} ${options.path ?? '/'} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${options.key ?? randomBytes(16).toString('base64')}`,
    `Sec-WebSocket-Version: ${options.version ?? '13'}`,
  ];
  if (options.origin !== undefined) lines.push(`Origin: ${options.origin}`);
  if (options.extensions !== undefined)
    lines.push(`Sec-WebSocket-Extensions: ${options.extensions}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Sends raw bytes and returns everything the server sends back until it closes. */
export async function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 5000) {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(bytes);
  const timer = setTimeout(() => socket.destroy(new Error('no answer')), timeoutMs);
  await once(socket, 'close');
  clearTimeout(timer);
  const text = Buffer.concat(chunks).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, text };
}

/** A completed handshake on a plain socket: the test decides when to read and what to send. */
export interface RawWebSocket {
  readonly socket: Socket;
  /** The 101 response's status line and headers. */
  readonly head: string;
  /** Bytes that arrived with the 101 response, after its headers. */
  readonly rest: Buffer;
  send(text: string): void;
  /**
   * Starts reading the socket, paused until now so that a test can play a peer that does not
   * read: the frames the server sent, an array that grows as more arrive.
   */
  read(): Frame[];
}

export async function openRawWebSocket(
  port: number,
  options: UpgradeOptions = {},
): Promise<RawWebSocket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(upgradeRequest(port, options));
  let received: Buffer = Buffer.alloc(0);
  for (;;) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    received = Buffer.concat([received, chunk]);
    const end = received.indexOf('\r\n\r\n');
    if (end === -1) continue;
    const head = received.subarray(0, end).toString('latin1');
    if (!head.startsWith('HTTP/1.1 101')) {
      socket.destroy();
      throw new Error(`handshake refused: ${head.split('\r\n')[0]}`);
    }
    socket.pause();
    const rest = received.subarray(end + 4);
    return {
      socket,
      head,
      rest,
      send: (text) => socket.write(clientFrame(Opcode.text, text)),
      read() {
        const parser = createFrameParser();
        const frames = parser.push(rest);
        socket.on('data', (chunk: Buffer) => frames.push(...parser.push(chunk)));
        socket.resume();
        return frames;
      },
    };
  }
}
