import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The Django package ships the browser client as static files; they must be exactly what the
 * npm build compiles from src/client, or a Django page would run another client than the one
 * tested here.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHIPPED = join(ROOT, 'django-sidecast', 'src', 'django_sidecast', 'static', 'sidecast');

describe('the client shipped in django-sidecast', () => {
  let work: string;
  let built: string;

  before(() => {
    // A fresh build of src/client with the build's own settings, not whatever dist/ holds.
    work = mkdtempSync(join(tmpdir(), 'sidecast-django-client-'));
    built = join(work, 'out');
    const config = join(work, 'tsconfig.json');
    writeFileSync(
      config,
      JSON.stringify({
        extends: join(ROOT, 'tsconfig.build.json'),
        compilerOptions: { rootDir: join(ROOT, 'src', 'client'), outDir: built, types: [] },
        include: [join(ROOT, 'src', 'client')],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = spawnSync(process.execPath, [tsc, '-p', config], { encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  it('is byte for byte the npm build of src/client (run npm run build to refresh it)', () => {
    const modules = readdirSync(built)
      .filter((name) => name.endsWith('.js'))
      .sort();
    assert.ok(modules.includes('index.js'), modules.join(', '));
    assert.deepEqual(readdirSync(SHIPPED).sort(), modules);
    for (const name of modules) {
      assert.ok(
        readFileSync(join(SHIPPED, name)).equals(readFileSync(join(built, name))),
        `${name} differs from the build`,
      );
    }
  });
});
