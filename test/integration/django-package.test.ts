/**
 * The django-sidecast package: formatted, linted and type-checked, and its pytest suite, which
 * starts real `sidecast serve` processes from dist/ (built by the test command) against real
 * Redis, on SQLite, PostgreSQL and MariaDB (or MySQL), with Django 5.2 and with Django 4.2 LTS.
 * Needs Redis, PostgreSQL, MariaDB and Python 3.10+ with venv.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPackageTool, type PackageVenv } from '../support/django-package.js';

function passes(result: { status: number | null; output: string }): void {
  assert.equal(result.status, 0, result.output);
}

describe('django-sidecast', () => {
  it('is formatted as ruff formats it', async () => {
    passes(await runPackageTool('ruff', ['format', '--check', '.']));
  });

  it('passes ruff check', async () => {
    passes(await runPackageTool('ruff', ['check', '.']));
  });

  it('passes mypy --strict with django-stubs', async () => {
    passes(await runPackageTool('mypy', []));
  });

  const runs: [PackageVenv, string][] = [
    ['latest', 'Django 5.2'],
    ['django42', 'Django 4.2 LTS'],
  ];
  for (const [venv, django] of runs) {
    for (const dialect of ['sqlite', 'postgres', 'mysql']) {
      it(`passes its pytest suite on ${dialect} with ${django}, against real sidecast and Redis`, async () => {
        const result = await runPackageTool(
          'pytest',
          ['-q', '-p', 'no:cacheprovider'],
          { SIDECAST_TEST_DIALECT: dialect },
          venv,
        );
        passes(result);
        // A suite that collected nothing would pass too.
        assert.match(result.output, /\b\d{2,} passed\b/, result.output);
        assert.doesNotMatch(result.output, /skipped|xfail/, result.output);
      });
    }
  }
});
