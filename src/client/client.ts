import { backoffDelay, resolveBackoff, type BackoffOptions } from './backoff.js';

/**
 * - `connecting`: a socket is opening, or is open and waiting for getToken().
 * - `open`: the token was sent. sidecast says nothing when a token is good, so this is as
 *   connected as a client can know; a bad token shows up as a close moments later.
 * - `reconnecting`: waiting out a delay before the next attempt.
 * - `unauthorized`: stopped because sidecast refused two fresh tokens in a row, or getToken()
 *   returned no token. Nothing retries; create a new client once the user can log in again.
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

export type SocketConstructor = new (url: string) => SocketLike;

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
  /** Each event, parsed, with the exact text sidecast forwarded. */
  readonly onEvent?: (event: T, raw: string) => void;
  readonly onState?: (change: StateChange) => void;
}

export interface SidecastClient {
  readonly state: ClientState;
  /** Stops for good: closes the socket, cancels any pending retry, stops listening for 'online'. */
  close(): void;
}

// Mirrors of the server's close contract, kept here so this folder imports nothing else.
const GOING_AWAY = 1001;
const INTERNAL_ERROR = 1011;
const SERVICE_RESTART = 1012;
const AUTH_FAILED_REASON = 'authentication failed';
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

  function connect(): void {
    report('connecting');
    let ws: SocketLike;
    try {
      ws = new Socket(options.url);
    } catch (error) {
      return stop('closed', { error });
    }
    socket = ws;
    let openedAt = 0;
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
            if (token) {
              ws.send(token);
              report('open');
            } else stop('unauthorized');
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
      failures = refusals = 0;
      let event: T;
      try {
        event = JSON.parse(data) as T;
      } catch {
        return; // sidecast forwards JSON only; anything else is not meant for us
      }
      options.onEvent?.(event, data);
    });
    ws.addEventListener('close', ({ code, reason }) => {
      if (socket != ws) return;
      socket = undefined;
      const detail = { code, reason };
      if (code == INTERNAL_ERROR && reason == AUTH_FAILED_REASON) {
        // One refusal may be an expired token; two fresh tokens in a row means the user is out.
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
    close() {
      if (state != 'closed') stop('closed');
    },
  };
}
