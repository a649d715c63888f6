/**
 * Real Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core
 * (never a downloaded browser), and the compiled browser client those tests load.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots and other things worth looking at after a run (gitignored). */
export const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

/** Launches headless Chromium; throws (so the test fails, never skips) when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is required at ${CHROMIUM} for the browser tests: apt-get install -y chromium`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** A Django user's credentials, as typed into a login form. */
export interface DjangoLogin {
  readonly username: string;
  readonly password: string;
}

/**
 * Logs the page into a Django site through the admin's login form, as a person would, and waits
 * for the redirect to `next` (a path): from then on the page's browser context holds the session
 * cookie.
 */
export async function logIntoDjangoAdmin(
  page: Page,
  djangoUrl: string,
  next: string,
  { username, password }: DjangoLogin,
): Promise<void> {
  await page.goto(`${djangoUrl}/admin/login/?next=${next}`);
  await page.fill('#id_username', username);
  await page.fill('#id_password', password);
  await Promise.all([page.waitForURL(`${djangoUrl}${next}`), page.click('input[type="submit"]')]);
}

/** Makes page errors and console errors fail loudly instead of vanishing inside the browser. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // Chromium logs every refused WebSocket connection; refusals are part of what is tested.
    if (message.text().startsWith('WebSocket connection to')) return;
    const { url } = message.location();
    if (url.endsWith('/favicon.ico')) return; // browsers ask for one whether the page has it or not
    errors.push(`console: ${message.text()}${url ? ` (${url})` : ''}`);
  });
  return errors;
}

function newestChange(dir: string, suffix: string): number {
  if (!existsSync(dir)) return 0;
  const times = readdirSync(dir)
    .filter((name) => name.endsWith(suffix))
    .map((name) => statSync(join(dir, name)).mtimeMs);
  return times.length ? Math.max(...times) : 0;
}

/**
 * Returns dist/client, compiling src/client into it first when it is missing or older than its
 * sources. The compile uses tsconfig.build.json's settings (what `npm run build` does for these
 * files) but without Node's type definitions, so a Node-only API in the client fails here.
 */
export function builtClient(): string {
  const source = join(REPO_ROOT, 'src', 'client');
  const out = join(REPO_ROOT, 'dist', 'client');
  const built = existsSync(join(out, 'index.js')) ? newestChange(out, '.js') : 0;
  if (built > 0 && built >= newestChange(source, '.ts')) return out;
  const work = mkdtempSync(join(tmpdir(), 'sidecast-client-build-'));
  try {
    const config = join(work, 'tsconfig.json');
    writeFileSync(
      config,
      JSON.stringify({
        extends: join(REPO_ROOT, 'tsconfig.build.json'),
        compilerOptions: { rootDir: source, outDir: out, types: [] },
        include: [source],
      }),
    );
    mkdirSync(out, { recursive: true });
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = spawnSync(process.execPath, [tsc, '-p', config], { encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`compiling src/client failed:\n${result.stdout}${result.stderr}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
