import { spawnSync, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTracked } from './children.js';
import { renderScreen } from './terminal-screen.js';
import { waitFor } from './wait.js';

/**
 * Runs the sidecast CLI as a separate process, the way a person or a script does: from the
 * TypeScript sources through tsx (test/support/sidecast-cli.ts is bin/sidecast.js without the build
 * step), with piped standard streams or inside a pseudo-terminal made by util-linux `script`.
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = join(REPO_ROOT, 'test', 'support', 'sidecast-cli.ts');
const COMMAND = [process.execPath, '--import', 'tsx', ENTRY];

/** Settings the CLI reads; removed from the inherited environment so each test says what it sets. */
const SETTING_NAMES = /^(SIDECAST_|DJANGO_|SESAME_|AUTH_USER_MODEL$|USE_TZ$)/;

function childEnv(env: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([key]) => !SETTING_NAMES.test(key));
  return { ...Object.fromEntries(inherited), ...env };
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything written so far (for a terminal: the raw bytes, escapes included). */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves once stdout contains `text`; rejects with what was seen after `timeoutMs`. */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  write(text: string): void;
  /** Closes standard input (end of input). */
  end(): void;
  readonly exited: Promise<CliResult>;
}

export interface CliOptions {
  readonly env?: Readonly<Record<string, string>>;
}

function track(child: ChildProcess): CliProcess {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<CliResult>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
  exited.catch(() => undefined);
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async waitForOutput(text, timeoutMs = 10_000) {
      const seen = () => (typeof text === 'string' ? stdout.includes(text) : text.test(stdout));
      const output = () =>
        `${String(text)} in the output:\n${JSON.stringify(stdout)}\nstderr: ${stderr}`;
      await waitFor(seen, timeoutMs, output);
    },
    write: (text) => void child.stdin!.write(text),
    end: () => void child.stdin!.end(),
    exited,
  };
}

/** Starts `sidecast ARGS` with piped standard streams. */
export function startCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const child = spawnTracked(COMMAND[0]!, [...COMMAND.slice(1), ...args], {
    cwd: REPO_ROOT,
    env: childEnv(options.env ?? {}),
    stdio: 'pipe',
  });
  return track(child);
}

/** Runs `sidecast ARGS` to completion, with `input` (if any) as its standard input. */
export async function runCli(
  args: readonly string[],
  options: CliOptions & { input?: string } = {},
): Promise<CliResult> {
  const cli = startCli(args, options);
  cli.child.stdin!.on('error', () => undefined); // the command may exit before reading it all
  if (options.input !== undefined) cli.write(options.input);
  cli.end();
  return cli.exited;
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

let scriptChecked = false;

function requireScript(): void {
  if (scriptChecked) return;
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0 || !probe.stdout.includes('util-linux')) {
    throw new Error(
      'the pseudo-terminal tests need `script` from util-linux (apt-get install bsdutils)',
    );
  }
  scriptChecked = true;
}

/** A CliProcess in a pseudo-terminal: what is written is typed, `screen()` is what is shown. */
export interface TerminalCli extends CliProcess {
  screen(): string[];
}

/**
 * Starts `sidecast ARGS` inside a pseudo-terminal: standard input and output are a TTY, as for a
 * person at a terminal. `script -e` exits with the command's exit code.
 */
export function startCliInTerminal(args: readonly string[], options: CliOptions = {}): TerminalCli {
  requireScript();
  const command = [...COMMAND, ...args].map(shellQuote).join(' ');
  const child = spawnTracked('script', ['-qfec', command, '/dev/null'], {
    cwd: REPO_ROOT,
    env: { ...childEnv(options.env ?? {}), SHELL: '/bin/sh', TERM: 'xterm' },
    stdio: 'pipe',
  });
  const cli = track(child);
  return { ...cli, screen: () => renderScreen(cli.stdout()) };
}
