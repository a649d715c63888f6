import cluster from 'node:cluster';
import { SERVE_OPTIONS, startSidecast, type Sidecast } from '../app.js';
import { relayEventsBetweenWorkers } from '../bus/cluster-bus.js';
import {
  DJANGO_ENV_NOTES,
  formatHelp,
  loadDjangoSettings,
  parseArgs,
  type Env,
} from '../config.js';
import { SidecastError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { aggregateWorkerMetrics, scrapeAcrossWorkers } from '../metrics.js';

const NAMES = [...SERVE_OPTIONS, 'workers'] as const;
const USAGE = 'sidecast serve [OPTIONS]';
const SUMMARY =
  'Runs the notification server: clients send a django-sesame token as their first message and then receive, byte for byte, every event on the bus whose content_type_id they may view or change.';

interface WorkerReport {
  readonly sidecastWorker: 'listening' | 'failed';
  readonly detail: string;
}

function isWorkerReport(message: unknown): message is WorkerReport {
  return typeof message === 'object' && message !== null && 'sidecastWorker' in message;
}

export async function serve(argv: readonly string[], env: Env): Promise<number> {
  const args = parseArgs(NAMES, argv, env);
  if (args.help) {
    process.stdout.write(formatHelp(USAGE, SUMMARY, NAMES, {}, DJANGO_ENV_NOTES));
    return 0;
  }
  if (args.positionals.length > 0) {
    throw new SidecastError('CONFIG_INVALID', `unexpected argument "${args.positionals[0]}"`);
  }
  if (args.options.djangoDb === '') {
    throw new SidecastError(
      'CONFIG_INVALID',
      'no Django database: pass --django-db URL or set SIDECAST_DJANGO_DB',
    );
  }
  const django = loadDjangoSettings(env);
  const logger = createLogger(args.options.logLevel);
  if (cluster.isPrimary && args.options.workers > 1) {
    return runPrimary(args.options.workers, logger);
  }

  // The primary may ask a worker to stop before it has finished starting.
  let stopRequested = false;
  const earlyStop = (message: unknown) => (stopRequested ||= message === STOP_MESSAGE);
  if (cluster.isWorker) process.on('message', earlyStop);
  let app: Sidecast;
  try {
    app = await startSidecast({
      options: args.options,
      django,
      logger,
      waitForServices: args.options.waitForBus,
    });
  } catch (error) {
    if (cluster.isWorker && error instanceof SidecastError) {
      const report: WorkerReport = { sidecastWorker: 'failed', detail: error.message };
      process.send?.(report);
      return 1;
    }
    throw error;
  } finally {
    process.off('message', earlyStop);
  }
  if (cluster.isWorker) {
    scrapeAcrossWorkers(app.metrics);
    const report: WorkerReport = { sidecastWorker: 'listening', detail: app.url };
    process.send?.(report);
  } else {
    process.stdout.write(`sidecast listening on ${app.url}\n`);
  }
  const code = await waitForStop(app, logger, stopRequested);
  // Every handle should be closed by now; should one leak, the process still ends.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

const STOP_MESSAGE = 'sidecast:stop';

/**
 * The first SIGTERM or SIGINT drains: not ready, no new connections, clients closed with 1001
 * over --drain-seconds, exit 0. A second one exits at once with status 1.
 *
 * A worker takes its orders from the primary only, and ignores signals: a terminal's Ctrl-C and
 * systemd's stop reach every process of the group, and the worker must not count the signal and
 * the primary's relayed order as two requests. A worker whose primary has gone drains too.
 */
function waitForStop(app: Sidecast, logger: Logger, stopAtOnce: boolean): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) {
        logger.warn({ why }, 'second stop request: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ why }, 'shutting down');
      app.shutdown().then(
        () => finish(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          finish(1);
        },
      );
    };
    const onSigterm = () => stop('SIGTERM');
    const onSigint = () => stop('SIGINT');
    const ignore = () => undefined;
    const onMessage = (message: unknown) => {
      if (message === STOP_MESSAGE) stop('primary');
    };
    const onDisconnect = () => stop('primary gone');
    const finish = (code: number) => {
      process.off('SIGTERM', cluster.isWorker ? ignore : onSigterm);
      process.off('SIGINT', cluster.isWorker ? ignore : onSigint);
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      resolve(code);
    };
    if (cluster.isWorker) {
      process.on('SIGTERM', ignore);
      process.on('SIGINT', ignore);
      process.on('message', onMessage);
      process.on('disconnect', onDisconnect);
    } else {
      process.on('SIGTERM', onSigterm);
      process.on('SIGINT', onSigint);
    }
    if (stopAtOnce) stop('primary');
  });
}

/** The primary forks the workers, relays memory-bus events, reports once, and forwards signals. */
function runPrimary(workers: number, logger: Logger): Promise<number> {
  relayEventsBetweenWorkers();
  aggregateWorkerMetrics();
  return new Promise((resolve) => {
    let listening = 0;
    let failed = false;
    let stopping = false;
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on('message', (_worker, message: unknown) => {
      if (!isWorkerReport(message)) return;
      if (message.sidecastWorker === 'failed' && !failed) {
        failed = true;
        process.stderr.write(`sidecast: ${message.detail}\n`);
        for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGKILL');
      } else if (message.sidecastWorker === 'listening' && ++listening === workers) {
        process.stdout.write(`sidecast listening on ${message.detail} (${workers} workers)\n`);
      }
    });
    let exitCode = 0;
    cluster.on('exit', (worker, code, signal) => {
      if (!stopping && !failed) {
        // A worker that dies on its own takes its clients with it; they reconnect to the others.
        logger.error(
          { worker: worker.process.pid, exit: signal ?? code },
          'worker exited; starting another',
        );
        cluster.fork();
        return;
      }
      if (code !== 0) exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : exitCode);
    });
    const onSignal = (signal: NodeJS.Signals) => {
      const all = Object.values(cluster.workers ?? {});
      if (stopping) {
        logger.warn({ why: signal }, 'second stop request: exiting now');
        for (const worker of all) worker?.process.kill('SIGKILL');
        process.exit(1);
      }
      stopping = true;
      logger.info({ why: signal, workers: all.length }, 'shutting down');
      for (const worker of all) if (worker?.isConnected()) worker.send(STOP_MESSAGE);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
