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
import { createLogger } from '../log.js';

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
  if (cluster.isPrimary && args.options.workers > 1) return runPrimary(args.options.workers);

  const logger = createLogger(args.options.logLevel);
  let app: Sidecast;
  try {
    app = await startSidecast({ options: args.options, django, logger });
  } catch (error) {
    if (cluster.isWorker && error instanceof SidecastError) {
      const report: WorkerReport = { sidecastWorker: 'failed', detail: error.message };
      process.send?.(report);
      return 1;
    }
    throw error;
  }
  if (cluster.isWorker) {
    const report: WorkerReport = { sidecastWorker: 'listening', detail: app.url };
    process.send?.(report);
  } else {
    process.stdout.write(`sidecast listening on ${app.url}\n`);
  }
  return waitForSignals(app, logger);
}

/**
 * First SIGTERM/SIGINT drains, a second exits at once. A worker ignores SIGINT (a terminal's Ctrl-C
 * reaches the whole process group) and takes its orders from the primary instead.
 */
function waitForSignals(app: Sidecast, logger: ReturnType<typeof createLogger>): Promise<number> {
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
        () => resolve(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    if (cluster.isWorker) {
      process.on('SIGINT', () => undefined);
      process.on('message', (message: unknown) => {
        if (message === STOP_MESSAGE) stop('primary');
      });
    } else {
      process.on('SIGINT', () => stop('SIGINT'));
    }
  });
}

const STOP_MESSAGE = 'sidecast:stop';

/** The primary forks the workers, relays memory-bus events, reports once, and forwards signals. */
function runPrimary(workers: number): Promise<number> {
  relayEventsBetweenWorkers();
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
    cluster.on('exit', (_worker, code, signal) => {
      if (!stopping && !failed) {
        // A worker that dies on its own takes its clients with it; they reconnect to the others.
        process.stderr.write(`sidecast: a worker exited (${signal ?? code}); starting another\n`);
        cluster.fork();
        return;
      }
      if (code !== 0) exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : exitCode);
    });
    const onSignal = () => {
      const all = Object.values(cluster.workers ?? {});
      if (stopping) {
        for (const worker of all) worker?.process.kill('SIGKILL');
        process.exit(1);
      }
      stopping = true;
      for (const worker of all) if (worker?.isConnected()) worker.send(STOP_MESSAGE);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
