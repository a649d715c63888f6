#!/usr/bin/env node
// The test command: a preflight of the services the requested suites need, then format and lint,
// type-check, check that no file refers to a path outside the repository, build, then every test
// suite with node's runner. `npm test -- unit` (or component, integration, browser) runs the
// suites named, and the preflight checks only what those need (unit tests need no service).
//
// Tests never skip: one that needs a missing service fails. The preflight (scripts/preflight.ts)
// says so first, one line per missing service with the command that starts or installs it. With
// CI=true a missing service stops the run there, before any test; otherwise the lines are a
// warning and the tests run anyway (those that need it fail).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const SUITES = ['unit', 'component', 'integration', 'browser'];
const requested = process.argv.slice(2);
const suites = requested.length > 0 ? requested : SUITES;

function run(command, args) {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function testFiles(suite) {
  const dir = join('test', suite);
  return readdirSync(dir)
    .filter((name) => name.endsWith('.test.ts'))
    .sort()
    .map((name) => join(dir, name));
}

// First, and in about a second: exits non-zero with CI=true when a service is missing (or a
// suite name is unknown).
run(process.execPath, ['--import', 'tsx', 'scripts/preflight.ts', ...suites]);
if (requested.length === 0) {
  run('npx', ['prettier', '--check', '--log-level', 'warn', '.']);
  run('npx', ['eslint', '.']);
  run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
}
// Cheap, and a suite run alone must not pass on a file that only this machine has either.
run(process.execPath, ['--import', 'tsx', 'scripts/check-paths.ts']);
run('npx', ['tsc', '-p', 'tsconfig.build.json']);
// The Django package ships the client just built (django-client-static.test.ts compares them).
run(process.execPath, ['scripts/copy-django-client.js']);

const files = suites.flatMap(testFiles);
// Integration tests share machine-wide services; one file at a time keeps their timing honest.
run(process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-concurrency=1',
  '--test-timeout=300000',
  ...files,
]);
