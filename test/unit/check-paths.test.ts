/**
 * scripts/check-paths.ts: catches references that leave the repository, accepts the ones that
 * stay inside, and passes on this repository. Sample paths are assembled at run time: written
 * out, they would be outside references in this very file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkRepository, findOutsideReferences } from '../../scripts/check-paths.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'check-paths.ts');
const up = (levels: number): string => '../'.repeat(levels);
const machineArea = (name: string): string => `/${name}/`;

const texts = (file: string, text: string): string[] =>
  findOutsideReferences(file, text).map((found) => found.text);

describe('findOutsideReferences', () => {
  it('catches a ../ chain that climbs above the root, wherever the file is', () => {
    const vectors = `${up(3)}sibling/vectors/sesame_v2.json`;
    const line = `const url = new URL('${vectors}', import.meta.url);`;
    assert.deepEqual(texts('test/unit/a.test.ts', line), [vectors]);
    assert.deepEqual(texts('README.md', `see [the spec](${up(1)}sibling/spec.md)`), [
      `${up(1)}sibling/spec.md`,
    ]);
    assert.deepEqual(texts('a/b.ts', `import x from './${up(2)}x.js';`), [`./${up(2)}x.js`]);
    const found = findOutsideReferences('x.md', `one\ntwo ${up(1)}y\n`);
    assert.deepEqual(found, [
      { file: 'x.md', line: 2, text: `${up(1)}y`, reason: 'climbs above the repository root' },
    ]);
  });

  it('accepts ../ chains that stay inside the repository', () => {
    assert.deepEqual(texts('test/unit/a.test.ts', `import '${up(2)}src/app.js';`), []);
    assert.deepEqual(texts('test/a.ts', `new URL('${up(1)}README.md', import.meta.url)`), []);
    assert.deepEqual(texts('bin/sidecast.js', `import '${up(1)}dist/cli/main.js';`), []);
    assert.deepEqual(texts('a/b/c.md', `[up](${up(2)}README.md)`), []);
  });

  it('ignores ../ in the middle of a path or a URL, and ellipses', () => {
    assert.deepEqual(texts('x.ts', `'src/${up(1)}${up(1)}${up(1)}x'`), []);
    assert.deepEqual(texts('x.md', `https://example.com/${up(3)}x`), []);
    assert.deepEqual(texts('x.md', `.../x and $HOME${machineArea('work')}x`), []);
  });

  it("catches absolute paths into a machine's own folders, even in URLs without a host", () => {
    for (const area of ['work', 'home', 'root', 'Users', 'mnt']) {
      const path = `${machineArea(area)}someone/x.json`;
      assert.deepEqual(texts('test/a.ts', `readFileSync('${path}')`), [path], area);
    }
    const database = `sqlite://${machineArea('work')}db.sqlite3`;
    assert.deepEqual(texts('README.md', database), [`${machineArea('work')}db.sqlite3`]);
  });

  it('accepts system paths and the paths of URLs with a host', () => {
    const line =
      '`/usr/bin/chromium`, /etc/hosts, sqlite:///tmp/db.sqlite3, ' +
      `https://example.com${machineArea('home')}x, http://127.0.0.1:8888${machineArea('work')}, ` +
      `http://[::1]${machineArea('work')}x`;
    assert.deepEqual(texts('README.md', line), []);
  });
});

describe('the check-paths command', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  function repository(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'sidecast-check-paths-'));
    dirs.push(dir);
    const git = (...args: string[]) => {
      const result = spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
    };
    git('init', '-q');
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    git('add', '.');
    return dir;
  }

  function check(dir: string) {
    return spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, dir], {
      cwd: ROOT,
      encoding: 'utf8',
    });
  }

  it('fails on tracked, untracked and symlinked references out of the tree, naming each', () => {
    const dir = repository({
      'test/unit/v.test.ts': `new URL('${up(3)}sibling/v.json', import.meta.url);\n`,
      'src/ok.ts': `import '${up(1)}lib/x.js';\n`,
      '.gitignore': 'ignored.txt\n',
      'ignored.txt': `'${up(5)}not-checked'\n`,
    });
    writeFileSync(join(dir, 'new.md'), `data in ${machineArea('home')}someone/data\n`);
    symlinkSync(join(tmpdir()), join(dir, 'link'));
    const result = check(dir);
    assert.equal(result.status, 1, result.stderr);
    const lines = result.stderr.trim().split('\n');
    assert.deepEqual(lines.slice(0, -1).sort(), [
      `link:0: ${tmpdir()} (a symbolic link out of the tree)`,
      `new.md:1: ${machineArea('home')}someone/data (a machine's own folder)`,
      `test/unit/v.test.ts:1: ${up(3)}sibling/v.json (climbs above the repository root)`,
    ]);
    assert.match(lines.at(-1)!, /^check-paths: 3 reference\(s\) to paths outside the repository/);
  });

  it('passes on a repository whose references stay inside', () => {
    const dir = repository({
      'test/unit/v.test.ts': `new URL('${up(1)}fixtures/v.json', import.meta.url);\n`,
      'README.md': 'Chromium: `/usr/bin/chromium`; see [tests](test/unit/v.test.ts).\n',
    });
    const result = check(dir);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
  });

  it('finds nothing outside in this repository', () => {
    assert.deepEqual(checkRepository(ROOT), []);
  });
});
