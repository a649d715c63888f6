/**
 * scripts/preflight.ts: one line per missing need, only for the suites asked for, and with
 * CI=true a failing exit before any test runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NEEDS, preflight, refusal, type Need } from '../../scripts/preflight.js';
import { freePort } from '../support/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'preflight.ts');

function runPreflight(args: readonly string[], env: Record<string, string>) {
  // CI comes from `env` only: the test run's own CI=true must not decide the outcome.
  const inherited = Object.entries(process.env).filter(([name]) => name !== 'CI');
  return spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...Object.fromEntries(inherited), ...env },
  });
}

describe('preflight', () => {
  it('asks nothing of the machine for the unit tests', async () => {
    assert.deepEqual(NEEDS.unit, []);
    assert.deepEqual(await preflight(['unit']), []);
  });

  it('names each missing need once, with why and how to fix it', async () => {
    const port = await freePort();
    const closed: Need = { name: 'Thing', problem: () => refusal(port), fix: 'start thing' };
    const met: Need = { name: 'Other', problem: async () => null, fix: 'never shown' };
    const needs = { unit: [], component: [closed, met], integration: [closed], browser: [] };
    assert.deepEqual(await preflight(['component', 'integration'], needs), [
      'Thing: ECONNREFUSED; start thing',
    ]);
    assert.deepEqual(await preflight(['unit', 'browser'], needs), []);
  });

  it('with CI=true exits 1 on a missing need; without, warns and exits 0', () => {
    const python = { SIDECAST_PYTHON: join(ROOT, 'no-such-python') };
    const line = `  ${python.SIDECAST_PYTHON} 3.10+ with venv: not found; apt-get install -y python3-venv`;
    const strict = runPreflight(['component'], { ...python, CI: 'true' });
    assert.equal(strict.status, 1, strict.stderr);
    assert.match(strict.stderr, /^preflight failed \(CI=true/);
    assert.ok(strict.stderr.split('\n').includes(line), strict.stderr);
    const lenient = runPreflight(['component'], python);
    assert.equal(lenient.status, 0, lenient.stderr);
    assert.match(lenient.stderr, /^preflight warning: /);
    assert.ok(lenient.stderr.split('\n').includes(line), lenient.stderr);
    assert.equal(runPreflight(['unit'], { ...python, CI: 'true' }).status, 0);
    assert.equal(runPreflight(['units'], {}).status, 2);
  });
});
