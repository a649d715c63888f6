import { backoffDelay, resolveBackoff, type BackoffOptions } from './backoff.js';
import {
  loadPosition,
  parseFrame,
  savePosition,
  SUBPROTOCOL,
  type Position,
  type PositionStorage,
  type Welcome,
} from './protocol-v1.js';

/**
 * - `connecting`: a socket is opening, or is open and waiting for getToken() (with v1: or for
 *   the welcome).
 * - `open`: with the guide protocol, the token was sent. sidecast says nothing when a token is
 *   good, so this is as connected as a client can know; a bad token shows up as a close moments
 *   later. With v1, the server's welcome arrived: the token was accepted.
 * - `reconnecting`: waiting out a delay before the next attempt.
 * - `unauthorized`: stopped because sidecast refused two fresh tokens in a row (a revoked
 *   connection counts as the first refusal), or getToken() returned no token. Nothing retries; create a new client once the user can log in again.
 * - `closed`: stopped by close(), or the socket could not even be constructed.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'unauthorized' | 'closed';

export interface StateChange {
  readonly state: ClientState;
  /** Close code and reason of the connection whose end caused this change. */
  readonly code?: number;
  readonly reason?: string;
  /** With `reconnecting`: milliseconds until the next attempt. */
  readonly delayMs?: number;
  /** What getToken() threw (or the socket constructor threw) on the way to this state. */
  readonly error?: unknown;
  /** v1, with `open`: every event missed since the position sent follows (see Welcome). */
  readonly recovered?: boolean;
  /** v1, with `open`: a position was sent and not honoured; refetch the state (see Welcome). */
  readonly gap?: boolean;
}

/** The part of the WebSocket API the client uses: browsers' WebSocket and `ws` both fit. */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(
    type: 'close',
    listener: (event: { code: number; reason: string }) => void,
  ): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
}

export type SocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

export interface ClientOptions<T = unknown> {
  /** ws:// or wss:// address of sidecast. */
  readonly url: string;
  /**
   * Returns a fresh django-sesame token. Called once per connection, right after the socket
   * opens, so every reconnection presents a new token and the token endpoint is not polled while
   * sidecast is unreachable. Returning null or "" means "not logged in": the client stops as
   * `unauthorized`. Throwing (or rejecting) counts as a failed attempt: the error is reported in
   * the `reconnecting` state change and the client retries after the usual backoff.
   */
  readonly getToken: () => string | null | Promise<string | null>;
  /** WebSocket implementation; defaults to globalThis.WebSocket (pass `ws` in Node 20). */
  readonly WebSocket?: SocketConstructor;
  readonly backoff?: Partial<BackoffOptions>;
  /**
   * `guide` (the default): the original guide's protocol, which every sidecast and the guide's
   * own Python server speak. `v1`: offers the `sidecast.v1` subprotocol and resumes from the last
   * position on every reconnection; a server without v1 refuses such a connection, which is why
   * it is not the default.
   */
  readonly protocol?: 'guide' | 'v1';
  /** v1: where to keep the position so a page reload can resume too (e.g. sessionStorage). */
  readonly storage?: PositionStorage;
  /** v1: the storage key. Default `sidecast.position`; give each client on a page its own. */
  readonly storageKey?: string;
  /**
   * Each event, parsed, with the exact text it was published as. (v1: cut out of sidecast's event
   * frame; a frame laid out otherwise gives the payload re-serialized.)
   */
  readonly onEvent?: (event: T, raw: string) => void;
  readonly onState?: (change: StateChange) => void;
  /** v1: each connection's welcome, before its first event. `gap` means: refetch the state. */
  readonly onWelcome?: (welcome: Welcome) => void;
}

export interface SidecastClient {
  readonly state: ClientState;
  /** v1: the position the next connection resumes from, if any. */
  readonly position: Position | undefined;
  /** Stops for good: closes the socket, cancels any pending retry, stops listening for 'online'. */
  close(): void;
}

// Mirrors of the server's close contract, kept here so this folder imports nothing else.
const GOING_AWAY = 1001;
const INTERNAL_ERROR = 1011;
const SERVICE_RESTART = 1012;
const AUTH_FAILED_REASON = 'authentication failed';
const POLICY_VIOLATION = 1008;
const ACCESS_REVOKED_REASON = 'access revoked';
/** A connection that lasted this long was healthy: its end restarts the backoff from the bottom. */
const HEALTHY_MS = 20_000;

/**
 * Connects to sidecast, authenticates with a token from getToken(), delivers events, and keeps
 * reconnecting until close(). The first connection starts on the next microtask, so callbacks
 * may already refer to the returned client.
 */
export function createClient<T = unknown>(options: ClientOptions<T>): SidecastClient {
  const found = options.WebSocket ?? (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  if (!found) throw new TypeError('sidecast: no WebSocket available; pass options.WebSocket');
  const Socket: SocketConstructor = found;
  const backoff = resolveBackoff(options.backoff);
  const network = typeof window == 'object' ? window : undefined;
  const v1 = options.protocol == 'v1';
  const { storage, storageKey = 'sidecast.position' } = options;
  let position = v1 ? loadPosition(storage, storageKey) : undefined;
  let state: ClientState = 'connecting';
  let socket: SocketLike | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Failed attempts since the last healthy connection: the backoff exponent. */
  let failures = 0;
  /** Consecutive connections closed with "authentication failed". */
  let refusals = 0;

  function report(next: ClientState, detail?: Omit<StateChange, 'state'>): void {
    state = next;
    options.onState?.({ state: next, ...detail });
  }

  function stop(next: ClientState, detail?: Omit<StateChange, 'state'>): void {
    clearTimeout(timer);
    network?.removeEventListener('online', onOnline);
    const current = socket;
    socket = undefined;
    current?.close(1000);
    report(next, detail);
  }

  function retry(delayMs: number, detail: Omit<StateChange, 'state'>): void {
    report('reconnecting', { ...detail, delayMs });
    timer = setTimeout(connect, delayMs);
  }

  function onOnline(): void {
    // The network is back: whatever the last delay was, it was about the network being gone.
    if (state != 'reconnecting') return;
    clearTimeout(timer);
    failures = 0;
    connect();
  }

  function remember(next: Position): void {
    position = { epoch: next.epoch, offset: next.offset };
    savePosition(storage, storageKey, position);
  }

  function connect(): void {
    report('connecting');
    let ws: SocketLike;
    try {
      ws = v1 ? new Socket(options.url, [SUBPROTOCOL]) : new Socket(options.url);
    } catch (error) {
      return stop('closed', { error });
    }
    socket = ws;
    let openedAt = 0;
    /** v1: whether this connection asked to resume, and its welcome once it came. */
    let since: Position | undefined;
    let welcome: Position | undefined;
    /** v1: replayed events still to come; the welcome's position is ours only after them. */
    let replaying = 0;
    // Without an error listener `ws` in Node throws; the close event that follows says it all.
    ws.addEventListener('error', () => {});
    ws.addEventListener('open', () => {
      if (socket != ws) return;
      openedAt = Date.now();
      Promise.resolve()
        .then(options.getToken)
        .then(
          (token) => {
            if (socket != ws) return;
            if (!token) return stop('unauthorized');
            if (!v1) {
              ws.send(token);
              return report('open');
            }
            since = position;
            ws.send(JSON.stringify(since ? { token, since } : { token }));
          },
          (error: unknown) => {
            if (socket != ws) return;
            socket = undefined;
            ws.close(1000);
            retry(backoffDelay(failures++, backoff), { error });
          },
        );
    });
    ws.addEventListener('message', ({ data }) => {
      if (socket != ws || typeof data != 'string') return;
      if (v1) return receive(data);
      failures = refusals = 0;
      let event: T;
      try {
        event = JSON.parse(data) as T;
      } catch {
        return; // sidecast forwards JSON only; anything else is not meant for us
      }
      options.onEvent?.(event, data);
    });
    function receive(data: string): void {
      const frame = parseFrame<T>(data);
      if (frame?.type == 'welcome') {
        // The token was accepted; the backoff, as in the guide protocol, waits for an event.
        refusals = 0;
        welcome = frame.welcome;
        replaying = frame.welcome.replayed;
        if (!replaying) remember(welcome);
        const gap = !!since && !frame.welcome.recovered;
        options.onWelcome?.({ ...frame.welcome, gap });
        report('open', { recovered: frame.welcome.recovered, gap });
      } else if (frame && welcome) {
        failures = refusals = 0;
        remember({ epoch: welcome.epoch, offset: frame.offset });
        // The live feed starts after the welcome's offset, which may lie beyond the last
        // replayed event (events this user may not see): resume from there once caught up.
        if (replaying && !--replaying) remember(welcome);
        options.onEvent?.(frame.event, frame.raw);
      }
      // Anything else (malformed, unknown, an event before the welcome) is not for this client.
    }
    ws.addEventListener('close', ({ code, reason }) => {
      if (socket != ws) return;
      socket = undefined;
      const detail = { code, reason };
      const refused = code == INTERNAL_ERROR && reason == AUTH_FAILED_REASON;
      if (refused || (code == POLICY_VIOLATION && reason == ACCESS_REVOKED_REASON)) {
        // One refusal may be an expired token, and a revocation may be a password changed by
        // the user themself: one fresh token settles it. Two in a row means the user is out.
        if (++refusals > 1) return stop('unauthorized', detail);
        return retry(0, detail);
      }
      refusals = 0;
      if (openedAt && Date.now() - openedAt >= HEALTHY_MS) failures = 0;
      if (code == GOING_AWAY || code == SERVICE_RESTART) {
        // A restart or deploy, not a fault: come back at once, jittered only enough to spread
        // the herd over the first backoff window.
        failures = 0;
        return retry(backoffDelay(0, backoff), detail);
      }
      // 1013 (database busy), 1008 (limits), refused or dropped connections: back off.
      retry(backoffDelay(failures++, backoff), detail);
    });
  }

  network?.addEventListener('online', onOnline);
  void Promise.resolve().then(() => state == 'connecting' && connect());
  return {
    get state() {
      return state;
    },
    get position() {
      return position;
    },
    close() {
      if (state != 'closed') stop('closed');
    },
  };
}
