/**
 * The life of one client connection, as a state machine that owns its state:
 *
 *   awaiting-token --first message--> authenticating --principal--> live
 *         |                                 |                         |
 *         +-- deadline, binary, close ------+-- refusal, close -------+-- close, evict --> closed
 *
 * Each transition is a method that starts from the state it leaves, so whatever arrives late (an
 * authenticator answering after the client left, a second message, the deadline firing during
 * the close) finds the connection elsewhere and changes nothing. One --auth-timeout deadline
 * covers both steps before live: sending the token, then the authenticator answering for it.
 * A close, from either side, may begin in any state; the connection reaches closed when its
 * socket does, except that an evicted one leaves the router (and reaches closed) at once.
 *
 * Where a protocol version plugs in: the context's ClientProtocol reads the first message (a
 * version whose first message carries more than the token reads it there, and one it cannot read
 * is refused like a bad token); `#goLive` hands the live connection to the protocol's `join`,
 * which sends its greeting before the router is told, so that no event can overtake it; the
 * subprotocol chosen at the handshake picks the context a connection is opened with (one per
 * protocol, each with the router whose frames that protocol's clients read: ./protocol.ts for
 * the guide's, ./protocol-v1.ts for sidecast.v1). An authenticator that needs no first message
 * (a session cookie in the upgrade headers) is started by the constructor itself, with the
 * headers alone, under a protocol whose first message holds nothing but the token.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket, { type RawData } from 'ws';
import type { Principal } from '../auth/authenticator.js';
import { authFailed, authUnavailable, closeOf, type CloseErrorKind } from '../errors.js';
import type { Logger, LogLimiter } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Authentication } from './authentication.js';
import type { FrameSink, WriteBatcher } from './fanout.js';
import type { OpenConnections } from './open-connections.js';
import type { LivePermissions } from './live-permissions.js';
import type { LiveUsers } from './live-users.js';
import type { ClientProtocol, FirstMessage, LiveConnection } from './protocol.js';

export type ConnectionState = 'awaiting-token' | 'authenticating' | 'live' | 'closed';

/** How long a closing client may take to finish the close handshake before it is dropped. */
const CLOSE_GRACE_MS = 2000;
/** How long a slow consumer, once told to go, may keep reading what was queued for it. */
const SLOW_CONSUMER_GRACE_MS = 5000;

/** What every connection of a server shares: one object, so each connection holds one pointer. */
export interface LifecycleContext {
  readonly authTimeoutSeconds: number;
  /** Unsent bytes past which a live connection is closed as a slow consumer. */
  readonly maxBuffered: number;
  /** How this context's clients speak; it holds the router their frames go through. */
  readonly protocol: ClientProtocol;
  readonly authentication: Authentication;
  /** Who is live here, with which connections (the per-user limit, permission re-checks). */
  readonly liveUsers: LiveUsers<Connection>;
  /** The re-checks of live users, told of each connection going live; absent when there are none. */
  readonly permissions?: Pick<LivePermissions, 'mark' | 'joined'>;
  readonly connections: OpenConnections<Connection>;
  readonly batcher: WriteBatcher;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Lines a flood of bad clients causes: one per kind per interval, exact metrics. */
  readonly refusalLog: LogLimiter;
}

/**
 * ws's WebSocket with a pointer to its Connection. The WebSocketServer builds these (its
 * `WebSocket` option), so one listener function per event serves every client: ws calls it
 * with the socket as `this`, and a closure per socket would cost memory on each idle one.
 */
export class ClientSocket extends WebSocket {
  #connection: Connection | undefined = undefined;

  get connection(): Connection | undefined {
    return this.#connection;
  }

  /** Called by the Connection this socket belongs to; a socket belongs to one only. */
  attach(connection: Connection): void {
    this.#connection ??= connection;
  }
}

/** What only authentication needs, held from the upgrade until it settles. */
interface PendingAuthentication {
  readonly headers: IncomingHttpHeaders;
  readonly deadline: NodeJS.Timeout;
  /** From the first message on: aborted by the deadline or by the client leaving. */
  controller: AbortController | undefined;
}

function terminateSocket(ws: WebSocket): void {
  ws.terminate();
}

/**
 * One client. Frames from fan-out go straight to the socket through the write batcher; ws keeps
 * the protocol (pings, close handshake, parsing). A live connection whose unsent data would pass
 * `maxBuffered` is closed as a slow consumer instead of being allowed to grow memory or slow the
 * others.
 *
 * An idle live connection is this object, its ws and socket, and its bits in the router: the
 * upgrade headers, deadline timer and abort controller are dropped once authentication settles;
 * who the user is stays here, what they may see in the router only.
 */
export class Connection implements FrameSink, LiveConnection {
  readonly #ws: ClientSocket;
  readonly #socket: Socket;
  readonly #context: LifecycleContext;
  #state: ConnectionState = 'awaiting-token';
  #pendingAuth: PendingAuthentication | undefined;
  #identity: Pick<Principal, 'userId' | 'username' | 'credentialStamp' | 'session'> | undefined;
  /** Cleared by each keepalive ping, set again by the pong. */
  #alive = true;

  /** A connection just upgraded: it opens in awaiting-token, the deadline running. */
  static open(
    ws: ClientSocket,
    socket: Socket,
    headers: IncomingHttpHeaders,
    context: LifecycleContext,
  ): Connection {
    return new Connection(ws, socket, headers, context);
  }

  private constructor(
    ws: ClientSocket,
    socket: Socket,
    headers: IncomingHttpHeaders,
    context: LifecycleContext,
  ) {
    this.#ws = ws;
    this.#socket = socket;
    this.#context = context;
    context.connections.add(this);
    context.metrics.connections.inc();
    const deadline = setTimeout(Connection.#onDeadline, context.authTimeoutSeconds * 1000, this);
    this.#pendingAuth = { headers, deadline, controller: undefined };
    ws.attach(this);
    ws.on('pong', Connection.#onPong);
    ws.on('error', Connection.#onError);
    ws.on('close', Connection.#onClose);
    ws.on('message', Connection.#onMessage);
    if (
      context.protocol.tokenOnlyFirstMessage &&
      context.authentication.authenticatesOnOpen(headers)
    )
      void this.#authenticate({ token: '' });
  }

  /** The user, once live. */
  get userId(): string | undefined {
    return this.#identity?.userId;
  }

  /** What the credential depended on when it was accepted (see Principal.credentialStamp). */
  get credentialStamp(): string | undefined {
    return this.#identity?.credentialStamp;
  }

  /** The server-side session it rests on, if any (see Principal.session). */
  get session(): string | undefined {
    return this.#identity?.session;
  }

  /**
   * live: the user's permissions changed; from now on it receives exactly these content types'
   * events, those it keeps without a gap. Whether anything changed.
   */
  updateContentTypes(contentTypeIds: ReadonlySet<number>): boolean {
    if (this.#state !== 'live') return false;
    return this.#context.protocol.update(this, contentTypeIds);
  }

  /** live -> closed with 1008 access revoked: not one more event reaches it. */
  revoke(): void {
    const { code, reason } = closeOf('ACCESS_REVOKED');
    this.evict(code, reason);
  }

  /** True once a close has begun, from either side, even before the peer answers. */
  get #closing(): boolean {
    return this.#ws.readyState !== WebSocket.OPEN;
  }

  write(frame: Buffer): boolean {
    if (this.#state !== 'live' || this.#ws.readyState !== WebSocket.OPEN) return false;
    const unsent = this.#socket.writableLength;
    // Nothing waiting means the client keeps up, so a single event larger than the limit still goes.
    if (unsent > 0 && unsent + frame.length > this.#context.maxBuffered) {
      this.#closeSlow();
      return false;
    }
    this.#context.batcher.write(this.#socket, frame);
    return true;
  }

  /** Sends a keepalive ping; false, sending nothing, if the previous one was never answered. */
  heartbeat(): boolean {
    if (!this.#alive) return false;
    this.#alive = false;
    this.#ws.ping();
    return true;
  }

  /**
   * Any state, towards closed: sends a close frame, then drops the socket if the peer has not
   * finished the close handshake within `graceMs`. The close frame queues behind data already
   * written, so a client that reads slowly still learns the code; one that stopped reading is
   * dropped when the grace ends. The state becomes closed when the socket does.
   */
  close(code: number, reason: string, graceMs = CLOSE_GRACE_MS): void {
    const ws = this.#ws;
    if (ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState !== WebSocket.CLOSING) ws.close(code, reason);
    setTimeout(terminateSocket, graceMs, ws).unref();
  }

  /**
   * live -> closed now: leaves the router and its user's count at once, then closes with `code`,
   * for a connection that must be sent nothing more. Ignored in any other state.
   */
  evict(code: number, reason: string, graceMs = CLOSE_GRACE_MS): void {
    if (this.#state !== 'live') return;
    this.#leave();
    this.close(code, reason, graceMs);
  }

  /** Drops the socket without a close handshake (a dead peer, the server stopping). */
  terminate(): void {
    this.#ws.terminate();
  }

  #receive(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      if (this.#state === 'awaiting-token') {
        clearTimeout(this.#pendingAuth?.deadline);
        this.#context.metrics.authentications.inc({ outcome: 'failed' });
      }
      this.#closeAs('BINARY_MESSAGE');
      return;
    }
    // After the first message, text from the client carries no meaning: it is read and discarded.
    if (this.#state !== 'awaiting-token' || this.#closing) return;
    const first = this.#context.protocol.readFirstMessage(data.toString());
    if (first === undefined) return this.#refuseFirstMessage();
    void this.#authenticate(first);
  }

  /** A first message the protocol cannot read: refused as a bad token is, without asking anyone. */
  #refuseFirstMessage(): void {
    // Where a bad token's refusal leaves it, so that nothing later counts a second failure.
    this.#state = 'authenticating';
    this.#settle();
    const failure = { error: authFailed('unreadable first message'), started: performance.now() };
    const refusal = this.#context.authentication.refuse(failure);
    this.close(refusal.code, refusal.reason);
  }

  /** awaiting-token -> authenticating, then live or a refusal when the authenticator answers. */
  async #authenticate(first: FirstMessage): Promise<void> {
    // Every connection awaiting its token holds these: they go only when authentication settles.
    const pending = this.#pendingAuth!;
    const controller = new AbortController();
    pending.controller = controller;
    this.#state = 'authenticating';
    const { authentication, permissions } = this.#context;
    const credential = { token: first.token, headers: pending.headers };
    const mark = permissions?.mark() ?? 0;
    const attempt = await authentication.attempt(credential, controller.signal);
    this.#settle();
    // The client left (or was closed) while waiting: nobody to answer.
    if (this.#state !== 'authenticating' || this.#closing) return;
    if (attempt.principal) return this.#goLive(attempt.principal, first, mark);
    const refusal = authentication.refuse(attempt);
    this.close(refusal.code, refusal.reason);
  }

  /**
   * authenticating -> live: counts the user against their limit, then joins the protocol's feed.
   * `mark`: where control messages had got to when authentication began.
   */
  #goLive(principal: Principal, first: FirstMessage, mark: number): void {
    const { liveUsers, protocol, metrics, refusalLog, logger, permissions } = this.#context;
    if (!liveUsers.tryAdd(principal.userId, this)) {
      metrics.refused.inc({ reason: 'max_connections_per_user' });
      const fields = { user: principal.userId, count: liveUsers.countOf(principal.userId) };
      refusalLog.log('info', 'per-user', fields, 'too many connections for this user');
      this.#closeAs('MAX_CONNECTIONS_PER_USER');
      return;
    }
    // Identity only: the router holds the permissions, so an idle connection keeps no copy.
    const { userId, username, credentialStamp, session } = principal;
    this.#identity = { userId, username, credentialStamp, session };
    this.#state = 'live';
    protocol.join(this, principal, first);
    permissions?.joined(userId, mark);
    logger.debug(
      { user: principal.userId, contentTypes: principal.contentTypeIds.size },
      'client authenticated',
    );
  }

  /** Closes with the code and reason the error table gives `kind`. */
  #closeAs(kind: CloseErrorKind): void {
    const { code, reason } = closeOf(kind);
    this.close(code, reason);
  }

  /** live -> closed as a slow consumer (for the protocol, whose held frames count too). */
  closeSlow(): void {
    this.#closeSlow();
  }

  #closeSlow(): void {
    const { metrics, refusalLog } = this.#context;
    metrics.slowConsumerCloses.inc();
    metrics.dropped.inc({ reason: 'slow_consumer' });
    const fields = { user: this.userId, buffered: this.#socket.writableLength };
    refusalLog.log('warn', 'slow consumer', fields, 'slow consumer closed');
    const { code, reason } = closeOf('SLOW_CONSUMER');
    this.evict(code, reason, SLOW_CONSUMER_GRACE_MS);
  }

  #deadlinePassed(): void {
    if (this.#state === 'awaiting-token') {
      this.#context.metrics.authentications.inc({ outcome: 'timeout' });
      this.#closeAs('AUTH_TIMEOUT');
    } else if (this.#state === 'authenticating') {
      const { authTimeoutSeconds } = this.#context;
      this.#pendingAuth?.controller?.abort(
        authUnavailable(`authentication took longer than ${authTimeoutSeconds} s`),
      );
    }
  }

  /** Drops what only authentication needed, the deadline first. */
  #settle(): void {
    if (this.#pendingAuth === undefined) return;
    clearTimeout(this.#pendingAuth.deadline);
    this.#pendingAuth = undefined;
  }

  /** Any state -> closed; a live connection leaves the router and its user's count, once. */
  #leave(): void {
    if (this.#state === 'live') {
      this.#context.protocol.leave(this);
      this.#context.liveUsers.remove(this.#identity!.userId, this);
    }
    this.#state = 'closed';
  }

  #socketClosed(code: number): void {
    this.#pendingAuth?.controller?.abort();
    this.#settle();
    this.#leave();
    const { connections, metrics, logger } = this.#context;
    connections.delete(this);
    metrics.connections.dec();
    logger.debug({ user: this.userId, code }, 'connection closed');
  }

  // Shared by every connection: ws calls each with the socket as `this`, and only ClientSockets
  // are given them.
  static #of(ws: WebSocket): Connection {
    return (ws as ClientSocket).connection!;
  }

  static #onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    Connection.#of(this).#receive(data, isBinary);
  }

  static #onPong(this: WebSocket): void {
    Connection.#of(this).#alive = true;
  }

  static #onClose(this: WebSocket, code: number): void {
    Connection.#of(this).#socketClosed(code);
  }

  static #onError(this: WebSocket, error: Error): void {
    Connection.#of(this).#context.logger.debug({ err: error.message }, 'client protocol error');
  }

  static #onDeadline(connection: Connection): void {
    connection.#deadlinePassed();
  }
}
