/**
 * Fails when a file of the repository refers to a path outside it: a relative path whose `../`
 * chain climbs above the repository root (resolved against the file's own folder, as imports,
 * `new URL(..., import.meta.url)` and Markdown links are), an absolute path into a machine's
 * home or work areas, or a symbolic link that points out of the tree. A fresh clone has none of
 * those, so a test that needs one passes only on the machine it was written on.
 *
 * Usage: node --import tsx scripts/check-paths.ts [REPOSITORY_DIR]   (default: this repository)
 * Checks the files git tracks plus untracked ones that are not ignored, so a file not yet added
 * is caught before it is committed.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OutsideReference {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

// One or more `../` (optionally after `./`), not preceded by a character that would make it the
// middle of a longer path or of a URL (`a/../b`, `https://host/../x`, `.../`).
const RELATIVE = /(?<![\w./\\~$-])(?:\.\/)?(?:\.\.\/)+[^\s'"`()<>[\]{},;|*]*/g;

// Folders that exist on one machine only. Spelled out at run time so that this file does not
// itself contain what it looks for.
const MACHINE_AREAS = ['work', 'home', 'root', 'Users', 'mnt'];
const ABSOLUTE = new RegExp(
  `(?<![\\w.~$-])/(?:${MACHINE_AREAS.join('|')})/[^\\s'"\`()<>{},;|*]*`,
  'g',
);
// The path part of a URL (`https://example.com/home/x`) belongs to that host, not to a disk.
// `file:///...` and `sqlite:///...` have an empty host, so their paths are still checked.
const URL_BEFORE = /[a-z][a-z0-9+.-]*:\/\/[^\s/'"`]+$/i;

/** Whether `target`, relative to the folder of `file` (both relative to the root), leaves it. */
export function climbsOut(file: string, target: string): boolean {
  const resolved = posix.normalize(posix.join(posix.dirname(file), target));
  return resolved === '..' || resolved.startsWith('../');
}

/** The outside references in the text of `file` (a path relative to the repository root). */
export function findOutsideReferences(file: string, text: string): OutsideReference[] {
  const found: OutsideReference[] = [];
  text.split('\n').forEach((content, index) => {
    for (const match of content.matchAll(RELATIVE)) {
      if (climbsOut(file, match[0])) {
        found.push({
          file,
          line: index + 1,
          text: match[0],
          reason: 'climbs above the repository root',
        });
      }
    }
    for (const match of content.matchAll(ABSOLUTE)) {
      if (URL_BEFORE.test(content.slice(0, match.index))) continue;
      found.push({ file, line: index + 1, text: match[0], reason: "a machine's own folder" });
    }
  });
  return found;
}

function repositoryFiles(root: string): string[] {
  const listing = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return [...new Set(listing.split('\0').filter((name) => name !== ''))].sort();
}

/** Every outside reference in the repository at `root`. */
export function checkRepository(root: string): OutsideReference[] {
  const found: OutsideReference[] = [];
  for (const file of repositoryFiles(root)) {
    const path = posix.join(root, file);
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat === undefined) continue; // deleted in the work tree, not yet committed
    if (stat.isSymbolicLink()) {
      const target = readlinkSync(path);
      if (posix.isAbsolute(target) || climbsOut(file, target)) {
        found.push({ file, line: 0, text: target, reason: 'a symbolic link out of the tree' });
      }
      continue;
    }
    if (!stat.isFile()) continue;
    const bytes = readFileSync(path);
    if (bytes.includes(0)) continue; // binary
    found.push(...findOutsideReferences(file, bytes.toString('utf8')));
  }
  return found;
}

function main(argv: readonly string[]): number {
  const here = fileURLToPath(new URL('..', import.meta.url));
  const start = argv[0] ?? here;
  const root = execFileSync('git', ['rev-parse', '--show-toplevel'], {
    cwd: start,
    encoding: 'utf8',
  }).trim();
  const found = checkRepository(root);
  for (const { file, line, text, reason } of found) {
    process.stderr.write(`${file}:${line}: ${text} (${reason})\n`);
  }
  if (found.length > 0) {
    process.stderr.write(
      `check-paths: ${found.length} reference(s) to paths outside the repository; ` +
        'a fresh clone would not have them. Put what they need inside the repository.\n',
    );
    return 1;
  }
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
