/**
 * A minimal WebSocket client on a raw TCP socket, for generating load without a client library's
 * cost on the load generator's core. It offers permessage-deflate the way browsers do, inflates
 * when a server accepts it, answers pings, and speaks just enough Engine.IO / Socket.IO (v4, over
 * WebSocket only) to authenticate and receive events from the Socket.IO peer.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants as zlibConstants, createInflateRaw, type InflateRaw } from 'node:zlib';
import { createSyncInflater, type SyncInflater } from './inflate.js';

/** 'ws': the guide protocol (token as first message); 'v1': sidecast.v1 (JSON first message). */
export type Protocol = 'ws' | 'v1' | 'socketio';

export interface ClientTarget {
  readonly host: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly localAddress?: string;
}

export interface ClientEvents {
  /** The upgrade succeeded (the token has just been sent, or will be on Engine.IO's open). */
  opened(client: RawClient): void;
  /**
   * An application message, data[start..end): a text frame, or a Socket.IO event packet. The
   * buffer is only valid during the call (no copy is made for the common case).
   */
  message(client: RawClient, data: Buffer, start: number, end: number): void;
  /** Socket.IO only: the server accepted (true) or refused (false) the token. */
  authenticated(client: RawClient, accepted: boolean): void;
  /** The connection ended; code 1006 when no close frame was received. */
  closed(client: RawClient, code: number, reason: string, opened: boolean): void;
}

const DEFLATE_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * Every socket of the process reads into this one buffer (net's `onread`): no allocation per
 * read, which is most of a load generator's cost at ten thousand sockets. Reads are handled
 * synchronously and whatever must outlive one is copied.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const OPCODE_TEXT = 1;
const OPCODE_CLOSE = 8;
const OPCODE_PING = 9;
const OPCODE_PONG = 10;

/** One masked client frame (RFC 6455 5.3: every client frame is masked). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = frame.subarray(header, header + 4);
  randomFillSync(mask);
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

export class RawClient {
  readonly index: number;
  /** Free for the owner: the load generator keeps per-connection bookkeeping here. */
  firstProbeAt = 0;
  shard = 0;
  /** Protocol v1: the first message to send instead of {"token": ...} (e.g. with `since`). */
  firstMessage: string | undefined;
  /** Protocol v1 bookkeeping, kept by the owner: the welcome and what followed it. */
  welcomed = false;
  recovered = false;
  replayed = 0;
  afterWelcome = 0;
  done = false;
  #socket: Socket;
  #events: ClientEvents;
  #protocol: Protocol;
  #state: 'handshake' | 'open' | 'closed' = 'handshake';
  #pending: Buffer | undefined;
  #fragments: Buffer[] = [];
  #fragmentCompressed = false;
  #inflateBits = 0;
  #inflateResets = false;
  #inflater: InflateRaw | undefined;
  #syncInflater: SyncInflater | undefined;
  #inflated: Buffer[] = [];
  /** Messages waiting behind a compressed one, so that order is kept. */
  #queue: { data: Buffer; compressed: boolean }[] = [];
  #inflating = false;
  #token: string;

  constructor(index: number, target: ClientTarget, token: string, events: ClientEvents) {
    this.index = index;
    this.#events = events;
    this.#protocol = target.protocol;
    this.#token = token;
    const path = target.protocol === 'socketio' ? '/socket.io/?EIO=4&transport=websocket' : '/';
    this.#socket = connect({
      host: target.host,
      port: target.port,
      ...(target.localAddress ? { localAddress: target.localAddress } : {}),
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number, buffer: Uint8Array) => {
          this.#onData(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
          return true;
        },
      },
    });
    this.#socket.setNoDelay(true);
    this.#socket.on('connect', () => {
      this.#socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\n' +
          (target.protocol === 'v1' ? 'Sec-WebSocket-Protocol: sidecast.v1\r\n' : '') +
          'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
          'Origin: http://127.0.0.1:8000\r\n\r\n',
      );
    });
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => this.#finish(1006, ''));
  }

  get protocol(): Protocol {
    return this.#protocol;
  }

  get open(): boolean {
    return this.#state === 'open';
  }

  /** Sends a text message (masked, never compressed: permessage-deflate makes that optional). */
  sendText(text: string): void {
    if (this.#state === 'open') this.#socket.write(clientFrame(OPCODE_TEXT, Buffer.from(text)));
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #finish(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    const opened = this.#state === 'open';
    this.#state = 'closed';
    this.#inflater?.close();
    this.#syncInflater?.close();
    this.#socket.destroy();
    this.#events.closed(this, code, reason, opened);
  }

  #onData(chunk: Buffer): void {
    let data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    if (this.#state === 'handshake') {
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) {
        this.#pending = Buffer.from(data);
        return;
      }
      if (!this.#acceptHandshake(data.subarray(0, end).toString('latin1'))) return;
      data = data.subarray(end + 4);
    }
    let offset = 0;
    while (this.#state === 'open') {
      if (data.length - offset < 2) break;
      const first = data[offset]!;
      let length = data[offset + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (data.length - offset < 4) break;
        length = data.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (data.length - offset < 10) break;
        length = Number(data.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (data.length - offset < header + length) break;
      const start = offset + header;
      offset = start + length;
      // The usual frame, a whole uncompressed text message with nothing queued, costs no copy.
      if (first === 0x81 && this.#queue.length === 0 && !this.#inflating) {
        this.#onMessage(data, start, offset);
      } else this.#onFrame(first, data.subarray(start, offset));
    }
    if (this.#state === 'open' && offset < data.length) {
      // Copied so that a partial frame does not pin the whole read buffer.
      this.#pending = Buffer.from(data.subarray(offset));
    }
  }

  #acceptHandshake(head: string): boolean {
    if (!head.startsWith('HTTP/1.1 101')) {
      const status = Number(head.slice(9, 12)) || 0;
      this.#finish(4000 + status, head.split('\r\n', 1)[0]!);
      return false;
    }
    const extensions = /^sec-websocket-extensions:\s*(.*)$/im.exec(head)?.[1] ?? '';
    if (/permessage-deflate/i.test(extensions)) {
      const bits = /server_max_window_bits=(\d+)/i.exec(extensions);
      this.#inflateBits = Math.max(9, bits ? Number(bits[1]) : 15);
      this.#inflateResets = /server_no_context_takeover/i.test(extensions);
    }
    this.#state = 'open';
    if (this.#protocol === 'ws') this.sendText(this.#token);
    else if (this.#protocol === 'v1') {
      if (!/^sec-websocket-protocol:\s*sidecast\.v1\s*$/im.test(head)) {
        this.#finish(4001, 'sidecast.v1 not accepted');
        return false;
      }
      this.sendText(this.firstMessage ?? JSON.stringify({ token: this.#token }));
    }
    this.#events.opened(this);
    return true;
  }

  #onFrame(first: number, payload: Buffer): void {
    const opcode = first & 0x0f;
    const fin = (first & 0x80) !== 0;
    if (opcode >= OPCODE_CLOSE) {
      if (opcode === OPCODE_PING) this.#socket.write(clientFrame(OPCODE_PONG, payload));
      else if (opcode === OPCODE_CLOSE) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.#socket.write(clientFrame(OPCODE_CLOSE, payload.subarray(0, 2)));
        this.#finish(code, payload.subarray(2).toString());
      }
      return;
    }
    if (opcode !== 0) this.#fragmentCompressed = (first & 0x40) !== 0;
    if (!fin) {
      this.#fragments.push(Buffer.from(payload));
      return;
    }
    let message = payload;
    if (this.#fragments.length > 0) {
      message = Buffer.concat([...this.#fragments, payload]);
      this.#fragments = [];
    }
    if (this.#fragmentCompressed && this.#queue.length === 0 && !this.#inflating) {
      this.#syncInflater ??= createSyncInflater(this.#inflateBits);
      if (this.#syncInflater) {
        let inflated: Buffer;
        try {
          inflated = this.#syncInflater.inflate(message);
        } catch {
          this.#finish(1007, 'inflate failed');
          return;
        }
        if (this.#inflateResets) this.#syncInflater.reset();
        this.#onMessage(inflated, 0, inflated.length);
        return;
      }
    }
    if (this.#fragmentCompressed || this.#queue.length > 0 || this.#inflating) {
      this.#queue.push({ data: Buffer.from(message), compressed: this.#fragmentCompressed });
      this.#drainQueue();
    } else this.#onMessage(message, 0, message.length);
  }

  /** One compressed message at a time through the inflater, then whatever queued behind it. */
  #drainQueue(): void {
    while (!this.#inflating && this.#queue.length > 0 && this.#state === 'open') {
      const next = this.#queue.shift()!;
      if (!next.compressed) {
        this.#onMessage(next.data, 0, next.data.length);
        continue;
      }
      this.#inflating = true;
      const inflater = this.#inflaterFor();
      // One write per message: the inflater sync-flushes every write (see #inflaterFor).
      inflater.write(Buffer.concat([next.data, DEFLATE_TRAILER]), () => {
        const message = Buffer.concat(this.#inflated);
        this.#inflated = [];
        if (this.#inflateResets) inflater.reset();
        this.#inflating = false;
        if (this.#state === 'open') this.#onMessage(message, 0, message.length);
        this.#drainQueue();
      });
    }
  }

  #inflaterFor(): InflateRaw {
    if (!this.#inflater) {
      this.#inflater = createInflateRaw({
        windowBits: this.#inflateBits,
        flush: zlibConstants.Z_SYNC_FLUSH,
      });
      this.#inflater.on('data', (chunk: Buffer) => this.#inflated.push(chunk));
      this.#inflater.on('error', () => this.#finish(1007, 'inflate failed'));
    }
    return this.#inflater;
  }

  #onMessage(message: Buffer, start: number, end: number): void {
    if (this.#protocol !== 'socketio') {
      this.#events.message(this, message, start, end);
      return;
    }
    // Engine.IO packet type, then for "4" (message) the Socket.IO packet type.
    const type = message[start];
    if (type === 0x30 /* 0 open */) {
      this.sendText(`40${JSON.stringify({ token: this.#token })}`);
    } else if (type === 0x32 /* 2 ping */) {
      this.sendText('3');
    } else if (type === 0x34 /* 4 message */) {
      const kind = message[start + 1];
      if (kind === 0x32 /* 2 event */) this.#events.message(this, message, start, end);
      else if (kind === 0x30 /* 0 connect */) this.#events.authenticated(this, true);
      else if (kind === 0x34 /* 4 connect error */) this.#events.authenticated(this, false);
    } else if (type === 0x31 /* 1 close */) {
      this.#finish(1000, 'engine.io close');
    }
  }
}
