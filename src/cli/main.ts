import { exitCodeOf, isSidecastError } from '../errors.js';
import type { Env } from '../config.js';

/** A command receives its own arguments and returns the process exit code. */
export type Command = (argv: readonly string[], env: Env) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: {
    summary: 'Run the notification server.',
    load: async () => (await import('./serve.js')).serve,
  },
  connect: {
    summary: 'Interactive WebSocket client (send a token, watch events).',
    load: async () => (await import('./connect.js')).connect,
  },
  token: {
    summary: 'Print a fresh django-sesame token for a user.',
    load: async () => (await import('./token.js')).token,
  },
  publish: {
    summary: 'Publish events on the bus.',
    load: async () => (await import('./publish.js')).publish,
  },
  demo: {
    summary: 'Run a self-contained demo: SQLite, memory bus, a live page.',
    load: async () => (await import('./demo.js')).demo,
  },
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 2;
  const lines = Object.entries(COMMANDS).map(
    ([name, { summary }]) => `  ${name.padEnd(width)}${summary}`,
  );
  return [
    'Usage: sidecast COMMAND [OPTIONS]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run "sidecast COMMAND --help" for the options of a command.',
    '',
  ].join('\n');
}

/** Reports an error as one line; SidecastErrors are expected failures, anything else is a bug. */
export function reportError(error: unknown): number {
  if (isSidecastError(error)) {
    process.stderr.write(`sidecast: ${error.message}\n`);
    return exitCodeOf(error);
  }
  process.stderr.write(
    `sidecast: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  return 1;
}

export async function main(argv: readonly string[], env: Env): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`sidecast: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  try {
    const command = await entry.load();
    return await command(rest, env);
  } catch (error) {
    return reportError(error);
  }
}
