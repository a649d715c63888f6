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
 * the protocol (pings, close handshake, parsing). A connection whose unsent data would pass
 * `maxBuffered` is handed to `onSlow` instead of being allowed to grow memory or slow the others.
 */
export class Connection implements FrameSink {
  readonly ws: WebSocket;
  readonly socket: Socket;
  state: ConnectionState = 'awaiting-token';
  /** Who is connected; what they may see lives in the router only. */
  principal: Pick<Principal, 'userId' | 'username'> | undefined;
  /** Cleared when a ping is sent, set again by the pong. */
  alive = true;
  readonly #batcher: WriteBatcher;
  readonly #limits: ConnectionLimits;
  readonly #onSlow: (connection: Connection) => void;
  #closing = false;

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

  /** True once the server has started closing it, even before the peer answers. */
  get closing(): boolean {
    return this.#closing || this.ws.readyState !== WebSocket.OPEN;
  }

  write(frame: Buffer): boolean {
    if (this.state !== 'live' || this.closing) return false;
    const pending = this.socket.writableLength;
    // Nothing waiting means the client keeps up, so a single event larger than the limit still goes.
    if (pending > 0 && pending + frame.length > this.#limits.maxBuffered) {
      this.#onSlow(this);
      return false;
    }
    this.#batcher.write(this.socket, frame);
    return true;
  }

  /**
   * Sends a close frame, then drops the socket if the peer has not finished the close handshake
   * within `graceMs`. The close frame queues behind data already written, so a client that reads
   * slowly still learns the code; one that stopped reading is dropped when the grace ends.
   */
  close(code: number, reason: string, graceMs = 2000): void {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.#closing = true;
    if (this.ws.readyState !== WebSocket.CLOSING) this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), graceMs).unref();
  }
}
