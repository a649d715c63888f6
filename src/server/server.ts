import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type Server as WsServer } from 'ws';
import type { Authenticator } from '../auth/authenticator.js';
import type { BusHistory, StreamPosition } from '../bus/bus.js';
import type { OptionValues } from '../config.js';
import { createLogLimiter, type Logger, type LogLimiter } from '../log.js';
import type { Metrics } from '../metrics.js';
import { createRouter, type Router } from '../router.js';
import { createAuthentication } from './authentication.js';
import { guardDescriptorLimit } from './descriptor-limit.js';
import { drainConnections } from './drain.js';
import { createFanout, createWriteBatcher, type FrameSink } from './fanout.js';
import { createRequestHandler, type Readiness } from './http-routes.js';
import { startKeepalive } from './keepalive.js';
import { ClientSocket, Connection, type LifecycleContext } from './lifecycle.js';
import { createLimiter } from './limiter.js';
import { listenError } from './listen-error.js';
import { OpenConnections } from './open-connections.js';
import { createLivePermissions, type LivePermissions } from './live-permissions.js';
import { LiveUsers } from './live-users.js';
import { createLivePositions, type LivePositions } from './positions.js';
import { createInterest } from './interest.js';
import { createGuideProtocol } from './protocol.js';
import { createV1Protocol, V1_SUBPROTOCOL } from './protocol-v1.js';
import { createUpgradeGate, destroySocket } from './upgrade.js';

export const SERVER_OPTIONS = [
  'host',
  'port',
  'allowed-origins',
  'auth-timeout',
  'auth-concurrency',
  'max-event-bytes',
  'max-buffered',
  'recover-max',
  'permissions-refresh',
  'max-connections',
  'max-connections-per-user',
  'ping-interval',
  'interest-hold',
  'drain-seconds',
  'publish-key',
  'metrics-key',
] as const;

export type ServerOptions = OptionValues<(typeof SERVER_OPTIONS)[number]>;

/**
 * The first message is a token (at most 432 characters), or v1's JSON holding one and a position;
 * anything larger is refused with 1009.
 */
export const MAX_CLIENT_MESSAGE_BYTES = 4096;

export interface ServerDependencies {
  readonly authenticator: Authenticator;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly publish: (payload: string) => Promise<void>;
  readonly readiness: () => Promise<Readiness>;
  readonly page?: (request: IncomingMessage, response: ServerResponse) => boolean;
  /** The bus's history, when it keeps one: v1 clients can then resume. */
  readonly history?: BusHistory;
  /** The bus's Bus.setInterest, when it routes by interest: told what the connections may see. */
  readonly setInterest?: (contentTypeIds: ReadonlySet<number>) => void;
}

export interface SidecastServer {
  listen(): Promise<AddressInfo>;
  /** The one fan-out entry point: bus drivers hand every payload here, with its position if any. */
  readonly dispatch: (payload: string, position?: StreamPosition) => number;
  /**
   * Where the bus's control channel hands each message (whose permissions changed). Ignored
   * when the authenticator cannot read users again.
   */
  readonly control: (message: string) => void;
  /** The control channel may have lost messages: every live user is re-checked. */
  readonly controlMissed: () => void;
  /** Resolves once every permission re-check asked for so far has been applied. */
  permissionsSettled(): Promise<void>;
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
  const { metrics, logger } = deps;
  // Refusals are what a flood of bad clients causes: one line per kind per interval, exact metrics.
  const refusalLog = createLogLimiter(logger);
  const interest = deps.setInterest
    ? createInterest(deps.setInterest, options.interestHold * 1000)
    : undefined;
  // One router per protocol, so that fan-out builds each protocol's frame once per event.
  const router = createRouter<FrameSink>(interest?.listener());
  const v1Router = createRouter<FrameSink>(interest?.listener());
  const positions = createLivePositions(deps.history);
  const batcher = createWriteBatcher();
  const dispatch = createFanout(router, metrics, logger, options, { router: v1Router, positions });
  const connections = new OpenConnections<Connection>();
  let draining = false;
  const liveUsers = new LiveUsers<Connection>(options.maxConnectionsPerUser);
  const livePermissions = keepPermissionsLive(options, deps, liveUsers, refusalLog);
  const lifecycle = createLifecycleContext(options, deps, {
    protocol: createGuideProtocol(router),
    batcher,
    connections,
    refusalLog,
    liveUsers,
    ...(livePermissions === undefined ? {} : { permissions: livePermissions }),
  });
  const v1Lifecycle = withV1Protocol(lifecycle, options, v1Router, positions);
  const gate = createUpgradeGate(options, {
    metrics,
    logger,
    refusalLog,
    draining: () => draining,
    openConnections: () => connections.size,
  });
  const http = createHttpServer(options, deps);
  const wss = createWebSocketServer();
  wss.on('wsClientError', gate.refuseMalformed);
  http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', destroySocket);
    if (!gate.admit(request, socket)) return;
    wss.handleUpgrade(request, socket, head, (ws) =>
      Connection.open(
        ws,
        socket,
        request.headers,
        ws.protocol === V1_SUBPROTOCOL ? v1Lifecycle : lifecycle,
      ),
    );
  });
  const keepalive = startKeepalive(connections, options.pingInterval, metrics, logger);

  return {
    listen: () => listenOn(http, options, metrics, logger),
    dispatch,
    control: (message) => livePermissions?.onControl(message),
    controlMissed: () => livePermissions?.catchUp(),
    permissionsSettled: async () => livePermissions?.settled(),
    get connectionCount() {
      return connections.size;
    },
    get liveConnectionCount() {
      return router.connectionCount + v1Router.connectionCount;
    },
    get draining() {
      return draining;
    },
    async drain(seconds) {
      draining = true;
      http.close();
      await drainConnections(connections, seconds, () => batcher.flush());
    },
    async close() {
      draining = true;
      keepalive.stop();
      livePermissions?.stop();
      interest?.close();
      for (const connection of connections) connection.terminate();
      wss.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}

/** Listens; a failure to (port in use, address not here) is one SidecastError naming it. */
async function listenOn(
  http: Server,
  options: ServerOptions,
  metrics: Metrics,
  logger: Logger,
): Promise<AddressInfo> {
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
}

/** The guide protocol's context with protocol v1 in its place: what sidecast.v1 clients share. */
function withV1Protocol(
  lifecycle: LifecycleContext,
  options: ServerOptions,
  router: Router<FrameSink>,
  positions: LivePositions,
): LifecycleContext {
  return {
    ...lifecycle,
    protocol: createV1Protocol({
      router,
      positions,
      recoverMax: options.recoverMax,
      maxEventBytes: options.maxEventBytes,
      maxBuffered: lifecycle.maxBuffered,
      metrics: lifecycle.metrics,
      log: lifecycle.refusalLog,
    }),
  };
}

/** The HTTP server the WebSocket upgrades arrive on; its other routes are in http-routes.ts. */
function createHttpServer(options: ServerOptions, deps: ServerDependencies): Server {
  // A client gets --auth-timeout to send its request headers too, so half-sent upgrade requests
  // cannot pile up sockets for Node's default minute. Node only looks for late headers every
  // connectionsCheckingInterval, so the cut-off lands up to one interval after the timeout: a
  // tenth of it, at most a second, keeps that close to what --auth-timeout documents.
  const headersTimeout = Math.min(60_000, Math.max(1000, options.authTimeout * 1000));
  return createServer(
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
}

/** Re-checks of the live users, when the authenticator can read them again. */
function keepPermissionsLive(
  options: ServerOptions,
  deps: ServerDependencies,
  users: LiveUsers<Connection>,
  log: LogLimiter,
): LivePermissions | undefined {
  const { directory } = deps.authenticator;
  if (directory === undefined) return undefined;
  const { metrics, logger } = deps;
  return createLivePermissions(
    { refreshSeconds: options.permissionsRefresh },
    { directory, users, metrics, logger, log },
  );
}

/** What the connections share, with the parts the server also uses (router, batcher, set). */
function createLifecycleContext(
  options: ServerOptions,
  deps: ServerDependencies,
  shared: Pick<
    LifecycleContext,
    'protocol' | 'batcher' | 'connections' | 'refusalLog' | 'liveUsers' | 'permissions'
  >,
): LifecycleContext {
  const { metrics, logger } = deps;
  return {
    ...shared,
    authTimeoutSeconds: options.authTimeout,
    // --max-buffered counts what a connection holds besides one event: a client that keeps up may
    // still have the last event queued when one of the largest size arrives, and that is no
    // reason to close it. (A text frame's header adds at most 10 bytes.)
    maxBuffered: options.maxBuffered + options.maxEventBytes + 10,
    authentication: createAuthentication({
      authenticator: deps.authenticator,
      limiter: createLimiter(options.authConcurrency),
      metrics,
      refusalLog: shared.refusalLog,
    }),
    metrics,
    logger,
  };
}

/**
 * Which subprotocol a handshake gets: sidecast.v1 when offered; otherwise what ws picks without
 * this hook (the first offered, or none), so that every client that does not ask for v1 sees
 * exactly the handshake it always did and speaks the guide protocol.
 */
function chooseSubprotocol(offered: Set<string>): string | false {
  if (offered.has(V1_SUBPROTOCOL)) return V1_SUBPROTOCOL;
  return offered.values().next().value ?? false;
}

/** ws, for the handshake and the protocol only: sidecast upgrades, tracks and closes itself. */
function createWebSocketServer(): WsServer<typeof ClientSocket> {
  return new WebSocketServer({
    handleProtocols: chooseSubprotocol,
    noServer: true,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
    perMessageDeflate: false,
    WebSocket: ClientSocket,
    // OpenConnections tracks every connection already; ws's own set would add a listener to each.
    clientTracking: false,
  });
}
