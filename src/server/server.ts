import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData } from 'ws';
import type { Authenticator } from '../auth/authenticator.js';
import type { OptionValues } from '../config.js';
import { CloseCodes, isSidecastError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { createRouter } from '../router.js';
import { Connection } from './connection.js';
import { createFanout, createWriteBatcher, type FrameSink } from './fanout.js';
import { createRequestHandler, type Readiness } from './http-routes.js';
import { createLimiter } from './limiter.js';
import { createOriginCheck } from './origin.js';

export const SERVER_OPTIONS = [
  'host',
  'port',
  'allowed-origins',
  'auth-timeout',
  'auth-concurrency',
  'max-buffered',
  'max-connections',
  'max-connections-per-user',
  'ping-interval',
  'drain-seconds',
  'publish-key',
] as const;

export type ServerOptions = OptionValues<(typeof SERVER_OPTIONS)[number]>;

/** The first message is a token (at most 432 characters); anything larger is refused with 1009. */
export const MAX_CLIENT_MESSAGE_BYTES = 4096;

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

export function createSidecastServer(
  options: ServerOptions,
  deps: ServerDependencies,
): SidecastServer {
  const { authenticator, metrics, logger } = deps;
  const router = createRouter<FrameSink>();
  const batcher = createWriteBatcher();
  const dispatch = createFanout(router, metrics, logger);
  const limiter = createLimiter(options.authConcurrency);
  const originAllowed = createOriginCheck(options.allowedOrigins);
  const connections = new Set<Connection>();
  const perUser = new Map<string, number>();
  let draining = false;

  const http: Server = createServer(
    createRequestHandler({ ...deps, publishKey: options.publishKey }),
  );
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
    perMessageDeflate: false,
  });

  function refuseUpgrade(socket: Socket, status: number, text: string, reason: string): void {
    metrics.refused.inc({ reason });
    logger.info({ reason, status }, 'upgrade refused');
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (draining) return refuseUpgrade(socket, 503, 'Service Unavailable', 'draining');
    if (!originAllowed(request.headers.origin))
      return refuseUpgrade(socket, 403, 'Forbidden', 'origin');
    if (options.maxConnections > 0 && connections.size >= options.maxConnections) {
      return refuseUpgrade(socket, 503, 'Service Unavailable', 'max_connections');
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new Connection(ws, socket, batcher, options, closeSlow);
      connections.add(connection);
      metrics.connections.inc();
      accept(connection);
    });
  });

  function closeSlow(connection: Connection): void {
    if (connection.state !== 'live') return;
    metrics.slowConsumerCloses.inc();
    metrics.dropped.inc({ reason: 'slow_consumer' });
    logger.warn(
      { user: connection.principal?.userId, buffered: connection.socket.writableLength },
      'slow consumer closed',
    );
    unregister(connection);
    connection.close(CloseCodes.policyViolation, 'slow consumer', 500);
  }

  function unregister(connection: Connection): void {
    if (connection.state === 'live' && connection.principal) {
      router.remove(connection, connection.principal.contentTypeIds);
      const left = (perUser.get(connection.principal.userId) ?? 1) - 1;
      if (left <= 0) perUser.delete(connection.principal.userId);
      else perUser.set(connection.principal.userId, left);
    }
    connection.state = 'closed';
  }

  function accept(connection: Connection): void {
    const { ws } = connection;
    const timer = setTimeout(() => {
      if (connection.state !== 'awaiting-token') return;
      metrics.authentications.inc({ outcome: 'timeout' });
      connection.close(CloseCodes.policyViolation, 'authentication timeout');
    }, options.authTimeout * 1000);
    ws.on('pong', () => (connection.alive = true));
    ws.on('error', (error) => logger.debug({ err: error.message }, 'client protocol error'));
    ws.on('close', () => {
      clearTimeout(timer);
      unregister(connection);
      connections.delete(connection);
      metrics.connections.dec();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // After the token, client messages carry no meaning: they are read and discarded.
      if (connection.state !== 'awaiting-token') return;
      clearTimeout(timer);
      if (isBinary) {
        metrics.authentications.inc({ outcome: 'failed' });
        connection.close(CloseCodes.unsupportedData, 'expected a text token');
        return;
      }
      connection.state = 'authenticating';
      void authenticate(connection, data.toString());
    });
  }

  async function authenticate(connection: Connection, token: string): Promise<void> {
    const started = performance.now();
    try {
      const principal = await limiter.run(() => authenticator.authenticate(token));
      metrics.authSeconds.observe((performance.now() - started) / 1000);
      if (connection.state !== 'authenticating') return; // the client left meanwhile
      const count = perUser.get(principal.userId) ?? 0;
      if (options.maxConnectionsPerUser > 0 && count >= options.maxConnectionsPerUser) {
        metrics.refused.inc({ reason: 'max_connections_per_user' });
        connection.close(CloseCodes.policyViolation, 'too many connections for this user');
        return;
      }
      perUser.set(principal.userId, count + 1);
      connection.principal = principal;
      connection.state = 'live';
      router.add(connection, principal.contentTypeIds);
      metrics.authentications.inc({ outcome: 'success' });
      logger.debug(
        { user: principal.userId, contentTypes: principal.contentTypeIds.size },
        'client authenticated',
      );
    } catch (error) {
      metrics.authSeconds.observe((performance.now() - started) / 1000);
      if (isSidecastError(error) && error.closeCode !== undefined) {
        const outcome = error.code === 'AUTH_UNAVAILABLE' ? 'unavailable' : 'failed';
        metrics.authentications.inc({ outcome });
        logger.info({ outcome, detail: error.message }, 'authentication refused');
        connection.close(error.closeCode, error.closeReason ?? '');
        return;
      }
      metrics.authentications.inc({ outcome: 'unavailable' });
      logger.error({ err: error }, 'authentication crashed');
      connection.close(CloseCodes.tryAgainLater, 'try again later');
    }
  }

  const pingTimer =
    options.pingInterval > 0
      ? setInterval(() => {
          for (const connection of connections) {
            if (!connection.alive) {
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

  async function drain(seconds: number): Promise<void> {
    draining = true;
    http.close();
    const all = [...connections];
    const batches = Math.max(1, Math.min(all.length, Math.ceil(seconds * 20)));
    const perBatch = Math.ceil(all.length / batches);
    const gap = all.length === 0 ? 0 : (seconds * 1000) / batches;
    for (let i = 0; i < all.length; i += perBatch) {
      for (const connection of all.slice(i, i + perBatch))
        connection.close(CloseCodes.goingAway, 'server shutting down', 1000);
      if (i + perBatch < all.length) await new Promise((resolve) => setTimeout(resolve, gap));
    }
    batcher.flush();
  }

  return {
    async listen() {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(options.port, options.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
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
