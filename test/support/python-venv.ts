import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Project-local Python virtualenvs for the tests: built with pip from a requirements file, and
 * rebuilt only when what they were built from (the hash of `inputs`) changes.
 */

export interface VenvSpec {
  /** The virtualenv's folder. */
  readonly dir: string;
  /** pip runs here, so relative paths in the requirements file are relative to it. */
  readonly cwd: string;
  readonly requirements: string;
  /** Files and folders whose contents the venv depends on, besides the requirements file. */
  readonly inputs?: readonly string[];
}

/** A lock older than this was left by a killed run; installs take well under a minute. */
const STALE_LOCK_MS = 10 * 60_000;
const SKIPPED = new Set(['__pycache__', '.venv', '.mypy_cache', '.ruff_cache', '.pytest_cache']);

export function venvPython(dir: string): string {
  return process.platform === 'win32'
    ? join(dir, 'Scripts', 'python.exe')
    : join(dir, 'bin', 'python');
}

function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: 'pipe' });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Every file under `path` (or `path` itself), sorted, caches and virtualenvs left out. */
async function filesOf(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const nested = await Promise.all(
    entries
      .filter((entry) => !SKIPPED.has(entry.name) && !entry.name.endsWith('.egg-info'))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((entry) => filesOf(join(path, entry.name))),
  );
  return nested.flat();
}

async function inputsHash(spec: VenvSpec): Promise<string> {
  const hash = createHash('sha256').update(await readFile(spec.requirements));
  for (const input of spec.inputs ?? []) {
    for (const file of await filesOf(input)) {
      hash.update(`\0${relative(spec.cwd, file)}\0`).update(await readFile(file));
    }
  }
  return hash.digest('hex');
}

/** mkdir is atomic, so it serializes installs across the test files node:test runs in parallel. */
async function withInstallLock(lockDir: string, work: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const lock = await stat(lockDir).catch(() => undefined);
      if (lock && Date.now() - lock.mtimeMs > STALE_LOCK_MS)
        await rm(lockDir, { force: true, recursive: true });
      else await sleep(500);
    }
  }
  try {
    await work();
  } finally {
    await rm(lockDir, { force: true, recursive: true });
  }
}

/** Builds (or finds current) the venv of `spec`; returns its python. */
export async function buildVenv(spec: VenvSpec): Promise<string> {
  const python = venvPython(spec.dir);
  const hashFile = join(spec.dir, 'requirements.sha256');
  // Beside the venv, not inside it: `venv --clear` empties the venv directory.
  const lockDir = `${spec.dir}-install.lock`;
  const current = async (wanted: string): Promise<boolean> =>
    (await readFile(hashFile, 'utf8').catch(() => '')) === wanted && (await exists(python));
  const wanted = await inputsHash(spec);
  if (await current(wanted)) return python;
  await withInstallLock(lockDir, async () => {
    if (await current(wanted)) return; // built by another test file meanwhile
    // A venv whose python is gone (the base interpreter moved) cannot be repaired in place.
    const clear = (await exists(python)) ? [] : ['--clear'];
    await run(
      process.env.SIDECAST_PYTHON ?? 'python3',
      ['-m', 'venv', ...clear, spec.dir],
      spec.cwd,
    );
    const pip = ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q'];
    await run(python, [...pip, '-r', spec.requirements], spec.cwd);
    await writeFile(hashFile, wanted);
  });
  return python;
}
