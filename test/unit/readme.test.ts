import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { markdownText, optionsTable } from '../../scripts/readme-options.js';
import { runCli } from '../support/cli.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const REGENERATE = 'node --import tsx scripts/readme-options.ts --write';

interface OptionText {
  /** `--flag VALUE`, or `(environment only)` for a secret. */
  readonly flag: string;
  readonly env: string;
  readonly default: string;
  readonly meaning: string;
}

/** The options of `sidecast serve --help`, by environment variable. */
function parseHelp(help: string): Map<string, OptionText> {
  const options = new Map<string, OptionText>();
  for (const line of help.split('\n')) {
    const match =
      /^ {2}(\S+(?: \S+)?) {2,}(.*) \[default: (.*); (?:env (\S+)|environment only)\]$/.exec(line);
    if (!match) continue;
    const [, left, meaning, shown, env] = match as unknown as [
      string,
      string,
      string,
      string,
      string?,
    ];
    options.set(env ?? left, {
      flag: env === undefined ? '(environment only)' : left,
      env: env ?? left,
      default: shown,
      meaning,
    });
  }
  return options;
}

/** Splits a Markdown table cell into code spans and plain text (\` opens no code span). */
function parts(cell: string): { code: boolean; text: string }[] {
  return cell
    .split(/((?<!\\)`[^`]+`)/)
    .filter((part) => part !== '')
    .map((part) =>
      part.startsWith('`') && part.endsWith('`')
        ? { code: true, text: part.slice(1, -1) }
        : { code: false, text: part },
    );
}

/** What a Markdown renderer shows for a table cell: code spans as they are, escapes undone. */
function rendered(cell: string): string {
  return parts(cell)
    .map(({ code, text }) =>
      code ? text.replaceAll('\\|', '|') : text.replace(/\\([!-/:-@[-`{-~])/g, '$1'),
    )
    .join('');
}

/** Unescaped characters outside code spans that Markdown may read as markup instead of text. */
function markup(cell: string): string[] {
  return parts(cell)
    .filter(({ code }) => !code)
    .flatMap(({ text }) => text.replace(/\\[!-/:-@[-`{-~]/g, '').match(/[*_<[\]~`]/g) ?? []);
}

/** The rows of the options table (the one whose header starts `| flag | environment |`). */
function tableRows(markdown: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => /^\| flag +\| environment +\|/.test(line));
  assert.ok(start >= 0, 'README has no options table');
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** Asserts that a table says, character for character as rendered, what --help says. */
function assertTableMatchesHelp(markdown: string, help: Map<string, OptionText>): void {
  const seen = new Set<string>();
  for (const row of tableRows(markdown)) {
    assert.equal(row.length, 4, `options row with ${row.length} cells: ${row.join(' | ')}`);
    const [flag, env, shown, meaning] = row as [string, string, string, string];
    const name = rendered(env);
    const expected = help.get(name);
    assert.ok(expected, `the README documents ${name}, which serve --help does not list`);
    assert.ok(!seen.has(name), `two README rows for ${name}`);
    seen.add(name);
    const actual: OptionText = {
      flag: rendered(flag),
      env: name,
      default: rendered(shown),
      meaning: rendered(meaning),
    };
    assert.deepEqual(actual, expected, `README row for ${name} differs from --help; ${REGENERATE}`);
    for (const cell of row) {
      assert.deepEqual(markup(cell), [], `README row for ${name} has Markdown markup in "${cell}"`);
    }
  }
  assert.deepEqual(
    [...help.keys()].filter((name) => !seen.has(name)),
    [],
    'options not in README',
  );
}

describe('README', () => {
  let help: Map<string, OptionText>;
  before(async () => {
    const result = await runCli(['serve', '--help']);
    assert.equal(result.code, 0, result.stderr);
    help = parseHelp(result.stdout);
    assert.ok(help.size >= 19, `parsed only ${help.size} options from:\n${result.stdout}`);
  });

  it('shows every option of serve --help with its flag, variable, default and text', () => {
    assertTableMatchesHelp(readme, help);
  });

  it('is written by a generator whose table matches serve --help', () => {
    assertTableMatchesHelp(optionsTable().join('\n'), help);
  });

  it('escapes what Markdown would read as emphasis, so * stays *', () => {
    const text =
      'origins; "*" wildcards (https://*.example.com, a_b_c, [x], <y>, ~z~, `q`, a|b, \\)';
    const cell = markdownText(text);
    assert.equal(rendered(cell), text);
    assert.deepEqual(markup(cell), []);
    assert.deepEqual(markup('"_" wildcards (https://_.example.com'), ['_', '_']);
    assert.deepEqual(markup('"*" wildcards'), ['*']);
  });

  it('documents every Django setting sidecast reads', () => {
    for (const name of [
      'DJANGO_SECRET_KEY',
      'DJANGO_SECRET_KEY_FALLBACKS',
      'AUTH_USER_MODEL',
      'USE_TZ',
      'SESAME_MAX_AGE',
      'SESAME_KEY',
      'SESAME_SIGNATURE_SIZE',
      'SESAME_ONE_TIME',
      'SESAME_INVALIDATE_ON_PASSWORD_CHANGE',
      'SESAME_INVALIDATE_ON_EMAIL_CHANGE',
      'SESAME_PRIMARY_KEY_FIELD',
      'SESAME_PACKER',
    ]) {
      assert.ok(readme.includes(`\`${name}\``), `README does not mention ${name}`);
    }
  });
});
