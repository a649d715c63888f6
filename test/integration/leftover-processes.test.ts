/**
 * No test leaves a process behind: a private redis-server started through test/support/faults.ts
 * dies with the test process, whether that fails, times out, is terminated or is SIGKILLed; and
 * stopping a tracked child stops its whole process group.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isRunning, spawnTracked, stopAllChildren, stopChild } from '../support/children.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = 'test/fixtures/children';

/** Starts `node --import tsx ARGS` in the repository, tracked like any other test child. */
function node(args: readonly string[]): ChildProcess {
  // Without NODE_TEST_CONTEXT a nested `node --test` runs its file instead of deferring to us.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return spawnTracked(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** The pid the fixture prints once its redis-server answers. */
async function redisPid(child: ChildProcess, timeoutMs = 20_000): Promise<number> {
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => lines.close(), timeoutMs);
  try {
    for await (const line of lines) {
      const match = /redis-server pid (\d+)/.exec(line);
      if (match) return Number(match[1]);
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`no redis-server pid from the fixture:\n${stderr}`);
}

async function gone(pid: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

async function exitOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return { code, signal };
}

describe('processes started by tests', () => {
  // Pids this file learned of but did not spawn itself: killed here if a check below fails.
  const strays: number[] = [];
  after(async () => {
    await stopAllChildren();
    for (const pid of strays) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });

  async function check(
    args: readonly string[],
    end: (child: ChildProcess) => void,
    expected: { code: number | null; signal: string | null },
  ): Promise<void> {
    const child = node(args);
    const pid = await redisPid(child);
    strays.push(pid);
    assert.ok(isRunning(pid), 'the redis-server runs while its test process does');
    end(child);
    assert.deepEqual(await exitOf(child), expected);
    assert.ok(await gone(pid), `redis-server ${pid} outlived the test process`);
  }

  it('a test that times out takes its redis-server with it', async () => {
    await check(
      ['--test', '--test-timeout=4000', `${FIXTURES}/redis-test-times-out.ts`],
      () => undefined,
      { code: 1, signal: null },
    );
  });

  it('a script that fails with an uncaught error takes its redis-server with it', async () => {
    await check([`${FIXTURES}/redis-then.ts`], (child) => child.stdin!.write('throw\n'), {
      code: 1,
      signal: null,
    });
  });

  it('a test process stopped by SIGTERM takes its redis-server with it', async () => {
    await check([`${FIXTURES}/redis-then.ts`], (child) => child.kill('SIGTERM'), {
      code: null,
      signal: 'SIGTERM',
    });
  });

  it('a test process SIGKILLed, which runs no code, still takes its redis-server with it', async () => {
    await check([`${FIXTURES}/redis-then.ts`], (child) => child.kill('SIGKILL'), {
      code: null,
      signal: 'SIGKILL',
    });
  });

  it('stopChild stops the whole process group, not only its leader', async () => {
    const shell = spawnTracked('sh', ['-c', 'sleep 300 & echo $!; wait'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [line] = (await once(createInterface({ input: shell.stdout! }), 'line')) as [string];
    const sleeper = Number(line);
    strays.push(sleeper);
    assert.ok(isRunning(sleeper));
    await stopChild(shell);
    assert.ok(await gone(sleeper), 'the shell is gone, its child must be too');
  });
});
