/**
 * `sidecast demo` prints a line to watch a demo user's stream in a terminal. The test runs that
 * line as printed, through a POSIX shell (its environment assignments and quoting included), with
 * `sidecast` on the PATH being this checkout's CLI, and expects alice's events to arrive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectLine, shellWord } from '../../src/demo/connect-line.js';
import { builtClient } from '../support/browser.js';
import { startCli, type CliProcess } from '../support/cli.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI_ENTRY = join(REPO_ROOT, 'test', 'support', 'sidecast-cli.ts');

/** The environment of a fresh terminal: no sidecast or Django settings of its own. */
function terminalEnv(path: string): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(
    ([name]) => !/^(SIDECAST_|DJANGO_|SESAME_|npm_)/.test(name),
  );
  return { ...Object.fromEntries(kept), PATH: path };
}

describe('sidecast demo: the terminal line', () => {
  let bin: string;
  let demo: CliProcess | undefined;

  before(() => {
    builtClient(); // the demo serves dist/client
    // `sidecast` as the line names it: this checkout's CLI, run from its sources.
    bin = mkdtempSync(join(tmpdir(), 'sidecast-bin-'));
    const shim = join(bin, 'sidecast');
    const words = [process.execPath, '--import', 'tsx', CLI_ENTRY].map(shellWord).join(' ');
    writeFileSync(shim, `#!/bin/sh\nexec ${words} "$@"\n`);
    chmodSync(shim, 0o755);
  });
  after(() => {
    demo?.child.kill('SIGKILL');
    rmSync(bin, { recursive: true, force: true });
  });

  it('quotes what a shell would split, and only that', () => {
    const line = connectLine({
      program: 'sidecast',
      url: 'ws://127.0.0.1:8888/',
      username: 'alice',
      databaseFile: "/tmp/a dir/it's.sqlite3",
      env: { DJANGO_SECRET_KEY: 'k$y', SESAME_MAX_AGE: '30' },
    });
    assert.equal(
      line,
      "DJANGO_SECRET_KEY='k$y' SESAME_MAX_AGE=30 sidecast connect ws://127.0.0.1:8888/ --as alice " +
        "--django-db 'sqlite:///tmp/a dir/it'\\''s.sqlite3'",
    );
  });

  it('runs as printed and shows the events alice may see', async () => {
    demo = startCli(['demo', '--port', '0', '--interval', '0.1']);
    await demo.waitForOutput('Press Ctrl-C to stop.', 20_000);
    const printed = demo.stdout().split('\n');
    const at = printed.findIndex((line) => line.includes('The same stream in a terminal'));
    assert.ok(at >= 0, demo.stdout());
    const line = printed[at + 1]!.trim();
    assert.match(line, /^DJANGO_SECRET_KEY=\S+ SESAME_MAX_AGE=\d+ sidecast connect ws:\/\//);
    assert.match(line, / --as alice --django-db sqlite:\/\/\//);

    const terminal = spawn('/bin/sh', ['-c', line], {
      cwd: REPO_ROOT,
      env: terminalEnv(`${bin}:${process.env.PATH ?? ''}`),
      stdio: 'pipe',
      detached: true,
    });
    let output = '';
    let errors = '';
    terminal.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    terminal.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const exited = once(terminal, 'close');
    try {
      const received = () => output.split('\n').filter((l) => l.startsWith('< '));
      const deadline = Date.now() + 20_000;
      while (received().length < 3) {
        assert.ok(Date.now() < deadline, `no events for alice:\n${output}\n${errors}`);
        await new Promise((wake) => setTimeout(wake, 50));
      }
      for (const shown of received()) {
        const event = JSON.parse(shown.slice(2)) as { model: string };
        assert.equal(event.model, 'book', `alice may view books only: ${shown}`);
      }
      terminal.stdin.end(); // end of input: the client closes with 1000 and exits 0
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, `${output}\n${errors}`);
      assert.match(output, /^Connected to ws:\/\/127\.0\.0\.1:\d+\/\.$/m);
      assert.match(output, /Connection closed: 1000/);
      assert.equal(errors, '');
    } finally {
      if (terminal.exitCode === null && terminal.signalCode === null) {
        process.kill(-terminal.pid!, 'SIGKILL');
      }
    }

    demo.child.kill('SIGINT');
    const result = await demo.exited;
    assert.equal(result.code, 0, result.stderr);
  });
});
