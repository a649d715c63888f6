import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from './auth/authenticator.js';
import { createAuthenticator } from './auth/create-authenticator.js';
import type { DjangoSesameSettings } from './auth/sesame/settings.js';
import type { Bus } from './bus/bus.js';
import { BUS_OPTIONS, createBus } from './bus/create-bus.js';
import type { OptionValues } from './config.js';
import { createLogger, createLogLimiter, logLinesDropped, type Logger } from './log.js';
import { SidecastError } from './errors.js';
import { createMetrics, type Metrics, type ScrapeScope } from './metrics.js';
import type { Readiness } from './server/http-routes.js';
import { createSidecastServer, SERVER_OPTIONS, type SidecastServer } from './server/server.js';

// Listed in the order --help shows them: where the data comes from first, then the server's limits.
export const SERVE_OPTIONS = [
  'django-db',
  'auth',
  'scope',
  'auth-url',
  'permissions-url',
  'proxy-secret',
  'proxy-timeout',
  ...BUS_OPTIONS,
  'wait-for-bus',
  ...SERVER_OPTIONS,
  'log-level',
] as const;

export type ServeOptions = OptionValues<(typeof SERVE_OPTIONS)[number]>;

export interface StartOptions {
  readonly options: ServeOptions;
  /** Required unless an authenticator is given. */
  readonly django?: DjangoSesameSettings;
  readonly authenticator?: Authenticator;
  readonly bus?: Bus;
  readonly logger?: Logger;
  readonly page?: (request: IncomingMessage, response: ServerResponse) => boolean;
  /**
   * When false start-up fails fast if the bus cannot be reached. When true the server starts
   * anyway, reports not ready and keeps retrying the bus. Default: options.waitForBus.
   * An unreachable database always fails start-up: the authenticator must read the user model.
   */
  readonly waitForServices?: boolean;
  /** What /metrics describes: this process ('local', the default) or every worker ('workers'). */
  readonly scrape?: ScrapeScope;
}

export interface Sidecast {
  /** ws://host:port/ of the listening server. */
  readonly url: string;
  readonly port: number;
  readonly server: SidecastServer;
  readonly bus: Bus;
  readonly metrics: Metrics;
  readiness(): Promise<Readiness>;
  /** Graceful stop: not ready, clients closed with 1001 over --drain-seconds, then closed. */
  shutdown(): Promise<void>;
  /** Immediate stop. */
  close(): Promise<void>;
}

const READINESS_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // Its one use waits for the database, so a timeout reads as the database being unavailable.
    const timer = setTimeout(
      () => reject(new SidecastError('DB_UNAVAILABLE', `${what} did not answer within ${ms} ms`)),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(
          error instanceof Error
            ? error
            : new SidecastError('DB_UNAVAILABLE', String(error), { cause: error }),
        );
      },
    );
  });
}

/** Assembles and starts one sidecast server: authenticator, bus, router and HTTP/WebSocket server. */
export async function startSidecast(start: StartOptions): Promise<Sidecast> {
  const { options } = start;
  const logger = start.logger ?? createLogger(options.logLevel);
  // Read only when /metrics is scraped, after the bus below exists.
  const metrics = createMetrics({
    busReady: () => bus.status().ready,
    logLinesDropped: () => logLinesDropped(logger),
    scrape: start.scrape ?? 'local',
  });
  const authenticator =
    start.authenticator ?? (await createAuthenticator(options, required(start.django)));
  let downSince = 0;
  const dropLog = createLogLimiter(logger);
  const bus =
    start.bus ??
    createBus(options, {
      onDown: (detail) => {
        downSince = Date.now();
        metrics.busOutages.inc();
        logger.error({ bus: options.bus }, detail);
      },
      onUp: () => logger.info({ bus: options.bus }, 'bus connected'),
      onReconnect: () => {
        metrics.busReconnects.inc();
        logger.info(
          { bus: options.bus, outageSeconds: (Date.now() - downSince) / 1000 },
          'bus connection restored',
        );
      },
      onResumed: () =>
        logger.info(
          { bus: options.bus, outageSeconds: (Date.now() - downSince) / 1000 },
          'bus answering again',
        ),
      onDropped: (reason, detail) => {
        metrics.dropped.inc({ reason });
        dropLog.log('warn', detail, { reason: detail }, 'event dropped');
      },
    });
  // Called only once the server below is listening.
  const readiness = async (): Promise<Readiness> => {
    const checks: Record<string, string> = {};
    const busStatus = bus.status();
    checks.bus = busStatus.ready ? 'ok' : (busStatus.detail ?? 'not ready');
    try {
      await withTimeout(authenticator.check(), READINESS_TIMEOUT_MS, 'database');
      checks.database = 'ok';
    } catch (error) {
      checks.database = error instanceof Error ? error.message : String(error);
    }
    if (server.draining) checks.server = 'draining';
    return { ready: Object.values(checks).every((value) => value === 'ok'), checks };
  };

  const server: SidecastServer = createSidecastServer(options, {
    authenticator,
    metrics,
    logger,
    readiness,
    publish: (payload) => bus.publish(payload),
    ...(start.page ? { page: start.page } : {}),
    ...(bus.history ? { history: bus.history } : {}),
    ...(bus.setInterest ? { setInterest: bus.setInterest.bind(bus) } : {}),
  });
  const dispatch = server.dispatch;
  try {
    await bus.start(dispatch, {
      failFast: !(start.waitForServices ?? options.waitForBus),
    });
  } catch (error) {
    await authenticator.close();
    throw error;
  }
  // Best effort, never failing start-up: messages missed while it is down are caught up on.
  void bus.control
    .start(server.control, server.controlMissed)
    .catch((error: unknown) =>
      logger.warn({ err: (error as Error).message }, 'cannot read the control channel'),
    );
  const address = await server.listen().catch(async (error: unknown) => {
    await Promise.all([bus.close(), authenticator.close()]);
    throw error;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `ws://${host}:${address.port}/`;
  logger.info(
    { url, bus: options.bus, connectionsLimit: options.maxConnections },
    'sidecast listening',
  );

  const running = server;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await running.close();
    await Promise.all([bus.close(), authenticator.close()]);
  };
  return {
    url,
    port: address.port,
    server: running,
    bus: bus,
    metrics,
    readiness,
    async shutdown() {
      logger.info(
        { connections: running.connectionCount, seconds: options.drainSeconds },
        'draining',
      );
      await running.drain(options.drainSeconds);
      await close();
      logger.info('stopped');
    },
    close,
  };
}

function required(django: DjangoSesameSettings | undefined): DjangoSesameSettings {
  if (!django) {
    throw new SidecastError(
      'CONFIG_INVALID',
      'startSidecast needs Django settings or an authenticator',
    );
  }
  return django;
}
