/**
 * What the test suites need from the machine, checked in about a second before any test runs: a
 * missing service otherwise shows as hundreds of tests failing one slow timeout at a time. Each
 * missing need is one line: what, why, and the command of the README's Tests section that starts
 * or installs it. The servers are only connected to (TCP, short timeout); whether PostgreSQL
 * trusts 127.0.0.1 or MariaDB lets root in is left for the tests to say.
 *
 * Usage: node --import tsx scripts/preflight.ts [SUITE...]   (default: every suite)
 * With CI=true it exits 1 when a need is missing; otherwise the lines are a warning and it
 * exits 0, so that the tests still run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

export const SUITES = ['unit', 'component', 'integration', 'browser'] as const;
export type Suite = (typeof SUITES)[number];

export interface Need {
  readonly name: string;
  /** Why the need is not met, or null when it is. */
  problem(): Promise<string | null>;
  /** The command that starts or installs it. */
  readonly fix: string;
}

const CONNECT_TIMEOUT_MS = 1000;

/** Why nothing accepts a connection on 127.0.0.1:`port`, or null when something does. */
export function refusal(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: CONNECT_TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`no answer within ${CONNECT_TIMEOUT_MS} ms`);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** Why `command args` cannot run or fails, or null when it exits 0. */
function commandProblem(command: string, args: readonly string[]): string | null {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 5000 });
  const error = result.error as NodeJS.ErrnoException | undefined;
  if (error) return error.code === 'ENOENT' ? 'not found' : error.message;
  return result.status === 0 ? null : `exited with ${result.status ?? result.signal}`;
}

function server(name: string, port: number, fix: string): Need {
  return { name: `${name} on 127.0.0.1:${port}`, problem: () => refusal(port), fix };
}

function command(name: string, run: readonly string[], fix: string): Need {
  return { name, problem: async () => commandProblem(run[0]!, run.slice(1)), fix };
}

const REDIS = server('Redis', 6379, 'service redis-server start');
const POSTGRES = server(
  'PostgreSQL',
  5432,
  'service postgresql start (user postgres, trusted from 127.0.0.1: see the README)',
);
const MARIADB = server(
  'MariaDB',
  3306,
  'service mariadb start (root, empty password over TCP: see the README)',
);
// The tests build the example Django project's virtualenv with this interpreter; Debian keeps
// ensurepip, which venv needs, in python3-venv.
const PYTHON = process.env.SIDECAST_PYTHON ?? 'python3';
const PYTHON_VENV = command(
  `${PYTHON} 3.10+ with venv`,
  [PYTHON, '-c', 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))'],
  'apt-get install -y python3-venv',
);
const REDIS_SERVER = command(
  'redis-server on the PATH (the outage tests start their own)',
  ['redis-server', '--version'],
  'apt-get install -y redis-server',
);
const NATS = server(
  'NATS with JetStream',
  4222,
  'nats-server --js -a 127.0.0.1 -p 4222 --sd /var/lib/nats & (see the README)',
);
const NATS_SERVER = command(
  'nats-server on the PATH (the cluster tests start their own)',
  ['nats-server', '--version'],
  'apt-get install -y nats-server',
);
const REDIS_CLI = command(
  'redis-cli on the PATH (it creates the Redis Clusters of the cluster tests)',
  ['redis-cli', '--version'],
  'apt-get install -y redis-tools',
);
const TERMINAL = command(
  'script from util-linux (the terminal tests of sidecast connect)',
  ['script', '--version'],
  'apt-get install -y bsdutils',
);
const CHROMIUM: Need = {
  name: 'Chromium at /usr/bin/chromium',
  problem: async () => (existsSync('/usr/bin/chromium') ? null : 'missing'),
  fix: 'apt-get install -y chromium',
};

/**
 * What each suite needs besides Node and the repository; the unit tests need nothing else. The
 * integration suite includes the django-sidecast package's (test/integration/django-package):
 * Python with venv and PyPI for its virtualenvs, Redis, and PostgreSQL beside SQLite.
 */
export const NEEDS: Readonly<Record<Suite, readonly Need[]>> = {
  unit: [],
  component: [REDIS, PYTHON_VENV, TERMINAL],
  integration: [REDIS, POSTGRES, MARIADB, PYTHON_VENV, REDIS_SERVER, NATS, NATS_SERVER, REDIS_CLI],
  browser: [CHROMIUM, REDIS, PYTHON_VENV],
};

/** One line per need of `suites` that is not met: what, why, and the command that fixes it. */
export async function preflight(
  suites: readonly Suite[],
  needs: Readonly<Record<Suite, readonly Need[]>> = NEEDS,
): Promise<string[]> {
  const wanted = [...new Set(suites.flatMap((suite) => needs[suite]))];
  // Started together: the TCP checks wait on the network while the commands run.
  const problems = await Promise.all(wanted.map((need) => need.problem()));
  return wanted.flatMap((need, i) =>
    problems[i] === null ? [] : [`${need.name}: ${problems[i]}; ${need.fix}`],
  );
}

async function main(argv: readonly string[], ci: boolean): Promise<number> {
  const unknown = argv.filter((name) => !(SUITES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown suite ${unknown.join(', ')}: expected ${SUITES.join(', ')}\n`);
    return 2;
  }
  const suites = argv.length > 0 ? (argv as Suite[]) : [...SUITES];
  const missing = await preflight(suites);
  if (missing.length === 0) return 0;
  const what = `the ${suites.join(', ')} tests need ${missing.length} missing service(s)`;
  process.stderr.write(
    ci
      ? `preflight failed (CI=true makes them mandatory, so no test runs): ${what}:\n`
      : `preflight warning: ${what}; the tests that use them will fail:\n`,
  );
  for (const line of missing) process.stderr.write(`  ${line}\n`);
  return ci ? 1 : 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2), process.env.CI === 'true');
}
