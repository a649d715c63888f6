import type { Socket } from 'node:net';
import WebSocket from 'ws';
import type { Principal } from '../auth/authenticator.js';
import type { FrameSink, WriteBatcher } from './fanout.js';

export type ConnectionState = 'awaiting-token' | 'authenticating' | 'live' | 'closed';

export interface ConnectionLimits {
  readonly maxBuffered: number;
}

/**
 * One client. Frames from fan-out go straight to the socket through the write batcher; ws keeps
 * the protocol (pings, close handshake, parsing). A connection whose unsent data passes
 * `maxBuffered` is closed instead of being allowed to grow memory or slow the others.
 */
export class Connection implements FrameSink {
  readonly ws: WebSocket;
  readonly socket: Socket;
  state: ConnectionState = 'awaiting-token';
  principal: Principal | undefined;
  alive = true;
  readonly #batcher: WriteBatcher;
  readonly #limits: ConnectionLimits;
  readonly #onSlow: (connection: Connection) => void;

  constructor(
    ws: WebSocket,
    socket: Socket,
    batcher: WriteBatcher,
    limits: ConnectionLimits,
    onSlow: (connection: Connection) => void,
  ) {
    this.ws = ws;
    this.socket = socket;
    this.#batcher = batcher;
    this.#limits = limits;
    this.#onSlow = onSlow;
  }

  write(frame: Buffer): boolean {
    if (this.state !== 'live' || this.ws.readyState !== WebSocket.OPEN) return false;
    if (this.socket.writableLength + frame.length > this.#limits.maxBuffered) {
      this.#onSlow(this);
      return false;
    }
    this.#batcher.write(this.socket, frame);
    return true;
  }

  /** Sends a close frame, then drops the socket if the peer does not finish the handshake soon. */
  close(code: number, reason: string, graceMs = 2000): void {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState !== WebSocket.CLOSING) this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), graceMs).unref();
  }
}
