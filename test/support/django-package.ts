import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVenv } from './python-venv.js';

/**
 * The django-sidecast package's own virtualenv (django-sidecast/.venv, from
 * requirements-test.txt: the package editable, pytest, ruff, mypy) and a way to run its tools.
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const PACKAGE_DIR = join(REPO_ROOT, 'django-sidecast');

/**
 * `latest`: Django 5.2 with the linters and the type checker (requirements-test.txt);
 * `django42`: the oldest Django supported, 4.2 LTS, for pytest only (requirements-django42.txt).
 */
export type PackageVenv = 'latest' | 'django42';

const VENVS: Record<PackageVenv, { dir: string; requirements: string }> = {
  latest: { dir: '.venv', requirements: 'requirements-test.txt' },
  django42: { dir: '.venv-django42', requirements: 'requirements-django42.txt' },
};

const venvs = new Map<PackageVenv, Promise<string>>();

/** Builds the venv unless current (the package is installed editable: src/ needs no rebuild). */
export function ensurePackageVenv(which: PackageVenv = 'latest'): Promise<string> {
  let venv = venvs.get(which);
  if (!venv) {
    venv = buildVenv({
      dir: join(PACKAGE_DIR, VENVS[which].dir),
      cwd: PACKAGE_DIR,
      requirements: join(PACKAGE_DIR, VENVS[which].requirements),
      inputs: [join(PACKAGE_DIR, 'pyproject.toml')],
    }).catch((error: unknown) => {
      venvs.delete(which);
      throw error;
    });
    venvs.set(which, venv);
  }
  return venv;
}

export interface ToolResult {
  readonly status: number | null;
  readonly output: string;
}

/** Runs `python -m MODULE ARGS` of a package venv in the package folder. */
export async function runPackageTool(
  module: string,
  args: readonly string[],
  env: Record<string, string> = {},
  which: PackageVenv = 'latest',
): Promise<ToolResult> {
  const python = await ensurePackageVenv(which);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(python, ['-m', module, ...args], {
      cwd: PACKAGE_DIR,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, output }));
  });
}
