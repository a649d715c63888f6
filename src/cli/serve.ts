import cluster, { type Worker } from 'node:cluster';
import { SERVE_OPTIONS, startSidecast, type ServeOptions, type Sidecast } from '../app.js';
import { relayEventsBetweenWorkers } from '../bus/cluster-bus.js';
import {
  DJANGO_ENV_NOTES,
  formatHelp,
  loadDjangoSettings,
  parseArgs,
  type Env,
} from '../config.js';
import type { DjangoSesameSettings } from '../auth/sesame/settings.js';
import { SidecastError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { aggregateWorkerMetrics } from '../metrics.js';
import {
  MessageKind,
  onMessageFromPrimary,
  onMessageFromWorker,
  sendToPrimary,
  sendToWorker,
  type StopMessage,
} from '../workers/messages.js';
import { describeFailure } from './main.js';

const NAMES = [...SERVE_OPTIONS, 'workers'] as const;
const USAGE = 'sidecast serve [OPTIONS]';
const SUMMARY =
  'Runs the notification server: clients send a django-sesame token as their first message and then receive, byte for byte, every event on the bus whose content_type_id they may view or change.';

const STOP: StopMessage = { kind: MessageKind.Stop };

interface Setup {
  readonly options: ServeOptions;
  readonly django: DjangoSesameSettings;
  readonly logger: Logger;
  readonly workers: number;
}

/** Reads the command line and settings; undefined when --help was answered. */
function setUp(argv: readonly string[], env: Env): Setup | undefined {
  const args = parseArgs(NAMES, argv, env);
  if (args.help) {
    process.stdout.write(formatHelp(USAGE, SUMMARY, NAMES, {}, DJANGO_ENV_NOTES));
    return undefined;
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
  const { workers, ...options } = args.options;
  return {
    options,
    django: loadDjangoSettings(env),
    logger: createLogger(args.options.logLevel),
    workers,
  };
}

export async function serve(argv: readonly string[], env: Env): Promise<number> {
  if (cluster.isWorker) return serveInWorker(argv, env);
  const setup = setUp(argv, env);
  if (!setup) return 0;
  if (setup.workers > 1) return runPrimary(setup.workers, setup.logger);
  const app = await start(setup);
  process.stdout.write(`sidecast listening on ${app.url}\n`);
  return exitSoon(await waitForStop(app, setup.logger, false));
}

/** Every handle should be closed once stopped; should one leak, the process still ends. */
function exitSoon(code: number): number {
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

function start(setup: Setup): Promise<Sidecast> {
  return startSidecast({
    options: setup.options,
    django: setup.django,
    logger: setup.logger,
    waitForServices: setup.options.waitForBus,
    // A worker's /metrics describes the whole server, whichever worker answers.
    scrape: cluster.isWorker ? 'workers' : 'local',
  });
}

/**
 * A worker reports to the primary instead of printing: whatever keeps it from starting (settings,
 * database, bus, the port), the primary prints it once and ends every worker.
 */
async function serveInWorker(argv: readonly string[], env: Env): Promise<number> {
  // A worker takes its orders from the primary only, from the start: a terminal's Ctrl-C and
  // systemd's stop reach every process of the group, and the primary relays them.
  process.on('SIGTERM', ignoreSignal);
  process.on('SIGINT', ignoreSignal);
  // The primary may ask a worker to stop before it has finished starting.
  let stopRequested = false;
  const stopEarlyListening = onMessageFromPrimary((message) => {
    if (message.kind === MessageKind.Stop) stopRequested = true;
  });
  let app: Sidecast;
  let logger: Logger;
  try {
    const setup = setUp(argv, env);
    if (!setup) return 0;
    logger = setup.logger;
    app = await start(setup);
  } catch (error) {
    return failStartup(error);
  } finally {
    stopEarlyListening();
  }
  // The channel to the primary must not keep this worker alive once its server has stopped.
  process.channel?.unref();
  sendToPrimary({ kind: MessageKind.Listening, url: app.url });
  return exitSoon(await waitForStop(app, logger, stopRequested));
}

function ignoreSignal(): void {}

/** Tells the primary why this worker cannot start, then exits; the primary does the printing. */
function failStartup(error: unknown): Promise<number> {
  const { text, exitCode } = describeFailure(error);
  const exit = () => process.exit(exitCode);
  // Exiting only once the report is written: the primary reads it before it sees the exit.
  if (!sendToPrimary({ kind: MessageKind.Failed, text, exitCode }, exit)) {
    process.stderr.write(`${text}\n`);
    exit();
  }
  return new Promise(() => undefined);
}

/**
 * The first SIGTERM or SIGINT drains: not ready, no new connections, clients closed with 1001
 * over --drain-seconds, exit 0. A second one exits at once with status 1.
 *
 * A worker takes its orders from the primary only (it ignores signals, see serveInWorker): it
 * must not count a signal to the group and the primary's relayed order as two requests. A worker
 * whose primary has gone drains too.
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
    let stopListening: () => void = () => undefined;
    const onDisconnect = () => {
      if (!stopping) stop('primary gone');
    };
    const finish = (code: number) => {
      process.off('SIGTERM', onSigterm);
      process.off('SIGINT', onSigint);
      stopListening();
      process.off('disconnect', onDisconnect);
      resolve(code);
    };
    if (cluster.isWorker) {
      // The primary may repeat its order (to a worker that was still starting): one order is one
      // request.
      stopListening = onMessageFromPrimary((message) => {
        if (message.kind === MessageKind.Stop && !stopping) stop('primary');
      });
      process.on('disconnect', onDisconnect);
    } else {
      process.on('SIGTERM', onSigterm);
      process.on('SIGINT', onSigint);
    }
    if (stopAtOnce) stop('primary');
  });
}

/** Workers that die this often after starting are not replaced again: something is wrong with all of them. */
const CRASHES_ALLOWED = 5;
const CRASH_WINDOW_MS = 60_000;

/**
 * The primary forks the workers, relays memory-bus events, reports once, and forwards signals.
 *
 * Start-up succeeds when every worker listens. Any worker that cannot start (it reports why) or
 * dies before listening ends the whole server: the primary prints one line, kills every worker,
 * waits for them and exits non-zero. Only a worker that was serving and died is replaced.
 */
function runPrimary(workers: number, logger: Logger): Promise<number> {
  // Each worker accepts connections on the shared socket itself. In Node's default round-robin
  // mode the primary accepts them and passes each one to a worker; a worker at its open-file
  // limit cannot receive the descriptor, and Node's handoff then never offers that worker
  // another connection. After one episode at the limit every worker sat idle while the primary
  // queued new connections for good. Accepting in the worker keeps the limit a per-process
  // matter that libuv and the server's connection cap handle.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  relayEventsBetweenWorkers();
  aggregateWorkerMetrics();
  return new Promise((resolve) => {
    let phase: 'starting' | 'running' | 'stopping' | 'failing' = 'starting';
    let exitCode = 0;
    const alive = new Set<Worker>();
    const listening = new Set<Worker>();
    const crashes: number[] = [];

    const finishIfDone = () => {
      if (alive.size === 0 && (phase === 'stopping' || phase === 'failing')) resolve(exitCode);
    };
    /** Ends everything; `line` (printed once, the first failure only) says why. */
    const fail = (line: string | undefined, code: number) => {
      if (phase === 'failing') return;
      phase = 'failing';
      exitCode = code === 0 ? 1 : code;
      if (line !== undefined) process.stderr.write(`${line}\n`);
      for (const worker of alive) worker.process.kill('SIGKILL');
      finishIfDone();
    };
    const fork = () => alive.add(cluster.fork());

    onMessageFromWorker((worker, message) => {
      if (message.kind === MessageKind.Failed) {
        fail(message.text, message.exitCode);
        return;
      }
      if (message.kind !== MessageKind.Listening) return;
      listening.add(worker);
      // It may have been too early to hear the first order.
      if (phase === 'stopping') sendToWorker(worker, STOP);
      if (phase === 'starting' && listening.size === workers) {
        phase = 'running';
        process.stdout.write(`sidecast listening on ${message.url} (${workers} workers)\n`);
      }
    });

    const onExit = (worker: Worker, code: number | null, signal: string | null) => {
      alive.delete(worker);
      const served = listening.delete(worker);
      if (phase === 'stopping' || phase === 'failing') {
        if (code !== 0 && phase === 'stopping') exitCode = 1;
        finishIfDone();
        return;
      }
      const how = signal ?? `exit status ${code}`;
      if (!served) {
        fail(`sidecast: a worker exited while starting (${how})`, 1);
        return;
      }
      const now = Date.now();
      crashes.push(now);
      while (crashes[0]! < now - CRASH_WINDOW_MS) crashes.shift();
      if (crashes.length > CRASHES_ALLOWED) {
        logger.error(
          { worker: worker.process.pid, exit: how, exits: crashes.length },
          'workers keep exiting: stopping',
        );
        fail(undefined, 1);
        return;
      }
      // A worker that dies on its own takes its clients with it; they reconnect to the others.
      logger.error({ worker: worker.process.pid, exit: how }, 'worker exited; starting another');
      fork();
    };
    // A worker's last words (why it failed) may still be in its channel when its exit is seen:
    // the channel closes only after everything in it has been read.
    cluster.on('exit', (worker, code, signal) => {
      if (worker.isConnected()) worker.once('disconnect', () => onExit(worker, code, signal));
      else onExit(worker, code, signal);
    });

    const onSignal = (signal: NodeJS.Signals) => {
      if (phase === 'stopping' || phase === 'failing') {
        logger.warn({ why: signal }, 'second stop request: exiting now');
        for (const worker of alive) worker.process.kill('SIGKILL');
        process.exit(1);
      }
      phase = 'stopping';
      logger.info({ why: signal, workers: alive.size }, 'shutting down');
      for (const worker of alive) sendToWorker(worker, STOP);
      finishIfDone();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    for (let i = 0; i < workers; i++) fork();
  });
}
