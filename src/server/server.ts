import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData } from 'ws';
import type { Authenticator, Credential } from '../auth/authenticator.js';
import type { OptionValues } from '../config.js';
import { authUnavailable, CloseCodes, isSidecastError } from '../errors.js';
import { createLogLimiter, type Logger } from '../log.js';
import type { Metrics, RefusalReason } from '../metrics.js';
import { createRouter } from '../router.js';
import { Connection } from './connection.js';
import { guardDescriptorLimit } from './descriptor-limit.js';
import { createFanout, createWriteBatcher, type FrameSink } from './fanout.js';
import { createRequestHandler, type Readiness } from './http-routes.js';
import { createLimiter } from './limiter.js';
import { listenError } from './listen-error.js';
import { createOriginCheck, MAX_ORIGIN_LENGTH } from './origin.js';

export const SERVER_OPTIONS = [
  'host',
  'port',
  'allowed-origins',
  'auth-timeout',
  'auth-concurrency',
  'max-event-bytes',
  'max-buffered',
  'max-connections',
  'max-connections-per-user',
  'ping-interval',
  'drain-seconds',
  'publish-key',
  'metrics-key',
] as const;

export type ServerOptions = OptionValues<(typeof SERVER_OPTIONS)[number]>;

/** The first message is a token (at most 432 characters); anything larger is refused with 1009. */
export const MAX_CLIENT_MESSAGE_BYTES = 4096;

/** How long a slow consumer, once told to go, may keep reading what was queued for it. */
const SLOW_CONSUMER_GRACE_MS = 5000;
/** How long drain waits for the last clients to finish their close handshake. */
const DRAIN_GRACE_MS = 2000;

export interface ServerDependencies {
  readonly authenticator: Authenticator;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly publish: (payload: string) => Promise<void>;
  readonly readiness: () => Promise<Readiness>;
  readonly page?: (request: IncomingMessage, response: ServerResponse) => boolean;
}

export interface SidecastServer {
  listen(): Promise<AddressInfo>;
  /** The one fan-out entry point: bus drivers hand every payload here. */
  dispatch(payload: string): number;
  readonly connectionCount: number;
  /** Authenticated connections registered for events. */
  readonly liveConnectionCount: number;
  readonly draining: boolean;
  /** Stops accepting and closes clients with 1001, spread over `seconds`. */
  drain(seconds: number): Promise<void>;
  close(): Promise<void>;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  403: 'Forbidden',
  503: 'Service Unavailable',
};

/** Shared by every socket: a closure per connection would cost memory on each idle one. */
function destroySocket(this: Socket): void {
  this.destroy();
}

export function createSidecastServer(
  options: ServerOptions,
  deps: ServerDependencies,
): SidecastServer {
  const { authenticator, metrics, logger } = deps;
  // Refusals are what a flood of bad clients causes: one line per kind per interval, exact metrics.
  const refusalLog = createLogLimiter(logger);
  const router = createRouter<FrameSink>();
  const batcher = createWriteBatcher();
  const dispatch = createFanout(router, metrics, logger, options);
  // --max-buffered counts what a connection holds besides one event: a client that keeps up may
  // still have the last event queued when one of the largest size arrives, and that is no reason
  // to close it. (A text frame's header adds at most 10 bytes.)
  const connectionLimits = { maxBuffered: options.maxBuffered + options.maxEventBytes + 10 };
  const limiter = createLimiter(options.authConcurrency);
  const originAllowed = createOriginCheck(options.allowedOrigins);
  const connections = new Set<Connection>();
  const perUser = new Map<string, number>();
  const whenEmpty: (() => void)[] = [];
  let draining = false;

  // A client gets --auth-timeout to send its request headers too, so half-sent upgrade requests
  // cannot pile up sockets for Node's default minute. Node only looks for late headers every
  // connectionsCheckingInterval, so the cut-off lands up to one interval after the timeout: a
  // tenth of it, at most a second, keeps that close to what --auth-timeout documents.
  const headersTimeout = Math.min(60_000, Math.max(1000, options.authTimeout * 1000));
  const http: Server = createServer(
    {
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, 30_000),
      connectionsCheckingInterval: Math.min(headersTimeout / 10, 1000),
    },
    createRequestHandler({
      ...deps,
      publishKey: options.publishKey,
      metricsKey: options.metricsKey,
      maxEventBytes: options.maxEventBytes,
    }),
  );
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
    perMessageDeflate: false,
  });

  function refuseUpgrade(
    socket: Socket,
    status: number,
    reason: RefusalReason,
    origin?: string,
  ): void {
    metrics.refused.inc({ reason });
    // A wrong origin is worth a line (usually a misconfigured --allowed-origins), if rate-limited
    // since anyone can send one; capacity refusals come in floods and are counted instead.
    const level = reason === 'origin' ? 'info' : 'debug';
    refusalLog.log(level, reason, { reason, status, origin }, 'upgrade refused');
    const body = `sidecast: ${reason.replaceAll('_', ' ')}\n`;
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\n` +
        `${status === 503 ? 'Retry-After: 1\r\n' : ''}` +
        `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
  }

  http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', destroySocket);
    if (draining) return refuseUpgrade(socket, 503, 'draining');
    const { origin } = request.headers;
    // No browser sends an origin this long: it is refused unread, counted apart, logged at debug.
    if (origin !== undefined && origin.length > MAX_ORIGIN_LENGTH)
      return refuseUpgrade(socket, 403, 'origin_too_long');
    if (!originAllowed(origin)) return refuseUpgrade(socket, 403, 'origin', origin);
    if (options.maxConnections > 0 && connections.size >= options.maxConnections) {
      return refuseUpgrade(socket, 503, 'max_connections');
    }
    let opened = false;
    wss.handleUpgrade(request, socket, head, (ws) => {
      opened = true;
      const connection = new Connection(ws, socket, batcher, connectionLimits, closeSlow);
      connections.add(connection);
      metrics.connections.inc();
      accept(connection, request.headers);
    });
    // ws answers a malformed handshake (method, key, version) itself, ending the socket.
    if (!opened && socket.writableEnded) {
      metrics.refused.inc({ reason: 'bad_handshake' });
      logger.debug({ method: request.method }, 'malformed upgrade request refused');
    }
  });

  function closeSlow(connection: Connection): void {
    metrics.slowConsumerCloses.inc();
    metrics.dropped.inc({ reason: 'slow_consumer' });
    const fields = {
      user: connection.principal?.userId,
      buffered: connection.socket.writableLength,
    };
    refusalLog.log('warn', 'slow consumer', fields, 'slow consumer closed');
    unregister(connection);
    connection.close(CloseCodes.policyViolation, 'slow consumer', SLOW_CONSUMER_GRACE_MS);
  }

  /** Takes a connection out of the router and the per-user count, exactly once. */
  function unregister(connection: Connection): void {
    if (connection.state === 'live' && connection.principal) {
      router.remove(connection);
      const left = (perUser.get(connection.principal.userId) ?? 1) - 1;
      if (left <= 0) perUser.delete(connection.principal.userId);
      else perUser.set(connection.principal.userId, left);
    }
    connection.state = 'closed';
  }

  function accept(connection: Connection, headers: IncomingHttpHeaders): void {
    const { ws } = connection;
    // Released once authentication settles (below): an idle connection keeps none of these.
    let authentication: AbortController | undefined = new AbortController();
    let upgradeHeaders: IncomingHttpHeaders | undefined = headers;
    // One deadline covers both steps: sending the token, then the database answering for it.
    let deadline: NodeJS.Timeout | undefined = setTimeout(() => {
      if (connection.state === 'awaiting-token') {
        metrics.authentications.inc({ outcome: 'timeout' });
        connection.close(CloseCodes.policyViolation, 'authentication timeout');
      } else if (connection.state === 'authenticating') {
        authentication?.abort(
          authUnavailable(`authentication took longer than ${options.authTimeout} s`),
        );
      }
    }, options.authTimeout * 1000);
    ws.on('pong', () => (connection.alive = true));
    ws.on('error', (error) => logger.debug({ err: error.message }, 'client protocol error'));
    ws.on('close', (code: number) => {
      clearTimeout(deadline);
      authentication?.abort();
      unregister(connection);
      connections.delete(connection);
      metrics.connections.dec();
      logger.debug({ user: connection.principal?.userId, code }, 'connection closed');
      if (connections.size === 0) for (const wake of whenEmpty.splice(0)) wake();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        if (connection.state === 'awaiting-token') {
          clearTimeout(deadline);
          metrics.authentications.inc({ outcome: 'failed' });
        }
        connection.close(CloseCodes.unsupportedData, 'binary messages are not accepted');
        return;
      }
      // After the token, text from the client carries no meaning: it is read and discarded.
      if (connection.state !== 'awaiting-token' || connection.closing) return;
      connection.state = 'authenticating';
      const credential: Credential = { token: data.toString(), headers: upgradeHeaders! };
      void authenticate(connection, credential, authentication!.signal, deadline!).finally(() => {
        authentication = undefined;
        deadline = undefined;
        upgradeHeaders = undefined;
      });
    });
  }

  async function authenticate(
    connection: Connection,
    credential: Credential,
    signal: AbortSignal,
    deadline: NodeJS.Timeout,
  ): Promise<void> {
    const started = performance.now();
    try {
      const principal = await limiter.run(() => authenticator.authenticate(credential), signal);
      clearTimeout(deadline);
      metrics.authSeconds.observe((performance.now() - started) / 1000);
      metrics.authentications.inc({ outcome: 'success' });
      if (connection.state !== 'authenticating' || connection.closing) return; // client left
      const count = perUser.get(principal.userId) ?? 0;
      if (options.maxConnectionsPerUser > 0 && count >= options.maxConnectionsPerUser) {
        metrics.refused.inc({ reason: 'max_connections_per_user' });
        const fields = { user: principal.userId, count };
        refusalLog.log('info', 'per-user', fields, 'too many connections for this user');
        connection.close(CloseCodes.policyViolation, 'too many connections for this user');
        return;
      }
      perUser.set(principal.userId, count + 1);
      // Identity only: the router holds the permissions, so an idle connection keeps no copy.
      connection.principal = { userId: principal.userId, username: principal.username };
      connection.state = 'live';
      router.add(connection, principal.contentTypeIds);
      logger.debug(
        { user: principal.userId, contentTypes: principal.contentTypeIds.size },
        'client authenticated',
      );
    } catch (error) {
      clearTimeout(deadline);
      // The client left while waiting: nobody to answer, nothing to count.
      if (connection.state !== 'authenticating' || connection.closing) return;
      metrics.authSeconds.observe((performance.now() - started) / 1000);
      if (isSidecastError(error) && error.closeCode !== undefined) {
        const unavailable = error.code === 'AUTH_UNAVAILABLE';
        metrics.authentications.inc({ outcome: unavailable ? 'unavailable' : 'failed' });
        const outcome = unavailable ? 'unavailable' : 'failed';
        const fields = { outcome, detail: error.message };
        refusalLog.log(unavailable ? 'warn' : 'info', outcome, fields, 'authentication refused');
        connection.close(error.closeCode, error.closeReason ?? '');
        return;
      }
      metrics.authentications.inc({ outcome: 'unavailable' });
      refusalLog.log('error', 'crashed', { err: error }, 'authentication crashed');
      connection.close(CloseCodes.tryAgainLater, 'try again later');
    }
  }

  const pingTimer =
    options.pingInterval > 0
      ? setInterval(() => {
          for (const connection of connections) {
            if (!connection.alive) {
              metrics.keepaliveTimeouts.inc();
              logger.debug({ user: connection.principal?.userId }, 'dead peer dropped');
              connection.ws.terminate();
              continue;
            }
            connection.alive = false;
            connection.ws.ping();
          }
        }, options.pingInterval * 1000)
      : undefined;
  pingTimer?.unref();

  function allClosed(timeoutMs: number): Promise<void> {
    if (connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      whenEmpty.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async function drain(seconds: number): Promise<void> {
    draining = true;
    http.close();
    const all = [...connections];
    // Closing everyone at once would send every client to the other instances in one wave.
    const batches = Math.max(1, Math.min(all.length, Math.ceil(seconds * 20)));
    const perBatch = Math.ceil(all.length / batches);
    const gap = all.length === 0 ? 0 : (seconds * 1000) / batches;
    for (let i = 0; i < all.length; i += perBatch) {
      for (const connection of all.slice(i, i + perBatch))
        connection.close(CloseCodes.goingAway, 'server shutting down', DRAIN_GRACE_MS);
      if (i + perBatch < all.length) await new Promise((resolve) => setTimeout(resolve, gap));
    }
    batcher.flush();
    await allClosed(DRAIN_GRACE_MS + 500);
  }

  return {
    async listen() {
      await new Promise<void>((resolve, reject) => {
        const failed = (error: Error) => reject(listenError(error, options.host, options.port));
        http.once('error', failed);
        http.listen(options.port, options.host, () => {
          http.off('error', failed);
          resolve();
        });
      });
      // Only now: until listening, an 'error' is the listen failure above, not an accept error.
      guardDescriptorLimit(http, metrics, logger);
      return http.address() as AddressInfo;
    },
    dispatch,
    get connectionCount() {
      return connections.size;
    },
    get liveConnectionCount() {
      return router.connectionCount;
    },
    get draining() {
      return draining;
    },
    drain,
    async close() {
      draining = true;
      if (pingTimer) clearInterval(pingTimer);
      for (const connection of connections) connection.ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}
