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

/**
 * What a failed command prints and its exit status: SidecastErrors are expected failures (one
 * line), anything else is a bug (its stack, to report it).
 */
export function describeFailure(error: unknown): {
  readonly text: string;
  readonly exitCode: number;
} {
  if (isSidecastError(error)) {
    return {
      text: `sidecast: ${error.message}`,
      exitCode: exitCodeOf(error),
    };
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return { text: `sidecast: unexpected error: ${detail}`, exitCode: 1 };
}

/** Reports an error on stderr and returns the exit status. */
export function reportError(error: unknown): number {
  const { text, exitCode } = describeFailure(error);
  process.stderr.write(`${text}\n`);
  return exitCode;
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
