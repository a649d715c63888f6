import { formatHelp, parseArgs, type CommandFlag, type Env } from '../config.js';
import { isSidecastError, SidecastError } from '../errors.js';
import { connectLine, sidecastProgram } from '../demo/connect-line.js';
import { DEMO_USERS } from '../demo/scenario.js';
import { startDemo } from '../demo/demo.js';
import type { Command } from './main.js';

const NAMES = ['host', 'port', 'log-level'] as const;
const FLAGS: Record<string, CommandFlag> = {
  interval: {
    description: 'Seconds between simulated admin actions (each waits 1 to 2 times this; 0: none).',
    valueName: 'SECONDS',
    defaultLabel: '1',
  },
};
const USAGE = 'sidecast demo [OPTIONS]';
/** The user of the terminal line: one who sees some events, not all. */
const TERMINAL_USER = 'alice';
const SUMMARY =
  "Runs a self-contained demo: a throwaway SQLite database in Django's schema with four users, sidecast on the memory bus, simulated admin activity, and a page where you watch what each user is allowed to see, live. Needs no Redis, no Python. Ctrl-C stops it and deletes the database.";

function intervalMs(raw: string | boolean | undefined): number {
  if (raw === undefined) return 1000;
  const seconds = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(seconds) || seconds < 0)
    throw new SidecastError('CONFIG_INVALID', `--interval: expected seconds, got "${String(raw)}"`);
  return seconds * 1000;
}

export const demo: Command = async (argv: readonly string[], env: Env) => {
  const args = parseArgs(NAMES, argv, env, FLAGS);
  if (args.help) {
    process.stdout.write(formatHelp(USAGE, SUMMARY, NAMES, FLAGS));
    return 0;
  }
  if (args.positionals.length > 0)
    throw new SidecastError('CONFIG_INVALID', `unexpected argument "${args.positionals[0]}"`);
  // JSON logs would drown the instructions; ask for them with --log-level.
  const quiet = !argv.some((arg) => arg.startsWith('--log-level')) && !env.SIDECAST_LOG_LEVEL;
  const { host, port } = args.options;
  const running = await startDemo({
    host,
    port,
    intervalMs: intervalMs(args.extra.interval),
    logLevel: quiet ? 'warn' : args.options.logLevel,
  }).catch((error: unknown) => {
    if (isSidecastError(error, 'LISTEN_FAILED') && /already in use$/.test(error.message))
      throw new SidecastError('LISTEN_FAILED', `${error.message}: pass --port`, { cause: error });
    throw error;
  });
  const users = DEMO_USERS.map(({ username, role }) => `    ${username.padEnd(6)} ${role}`);
  const terminal = connectLine({
    program: sidecastProgram(env),
    url: running.url.replace(/^http/, 'ws'),
    username: TERMINAL_USER,
    databaseFile: running.databaseFile,
    // The demo's own throwaway secret: it opens nothing but this temporary database.
    env: running.djangoEnv,
  });
  process.stdout.write(
    [
      `sidecast demo: open ${running.url} in a browser`,
      '',
      `  WebSocket endpoint ${running.sidecast.url} (memory bus)`,
      `  Django database    ${running.databaseFile} (SQLite, deleted on exit)`,
      '  Demo users:',
      ...users,
      '',
      `  The same stream in a terminal, as ${TERMINAL_USER} (another user: change --as):`,
      `    ${terminal}`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) process.exit(1);
      stopping = true;
      running.stop().then(
        () => {
          process.stdout.write('sidecast demo stopped; temporary database removed.\n');
          resolve(0);
        },
        (error: unknown) => {
          process.stderr.write(`sidecast: demo did not stop cleanly: ${String(error)}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
};
