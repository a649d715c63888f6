/**
 * The options table of README.md's `sidecast serve` section, written from OPTIONS (the table
 * --help prints). `node --import tsx scripts/readme-options.ts` prints it;
 * `... --write` replaces the table in README.md and formats the file with prettier.
 * test/unit/readme.test.ts checks that the README says what --help says.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { envName, OPTIONS, type OptionSpec } from '../src/config.js';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const HEADER = '| flag | environment | default | meaning |';

/**
 * Plain text as Markdown that shows it literally. Without the backslashes a pair of `*` (as in
 * `"*" wildcards (https://*.example.com`) is emphasis, which prettier then rewrites to `_`.
 */
export function markdownText(text: string): string {
  return text.replace(/[\\`*_|<[\]~]/g, '\\$&');
}

/** Text in a code span, which Markdown shows as it is (only `|` still ends a table cell). */
export function markdownCode(text: string): string {
  if (text.includes('`')) throw new Error(`no code span can hold ${JSON.stringify(text)}`);
  return `\`${text.replaceAll('|', '\\|')}\``;
}

/** The default as --help shows it. */
function defaultText(spec: OptionSpec<unknown>): string {
  if (spec.defaultLabel) return spec.defaultLabel;
  const value = spec.defaultValue;
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The table's lines, unformatted: header, separator, one row per option. */
export function optionsTable(): string[] {
  const rows = Object.entries(OPTIONS).map(([name, option]) => {
    const spec: OptionSpec<unknown> = option;
    const flag =
      spec.flag === false ? '(environment only)' : markdownCode(`--${name} ${spec.valueName}`);
    const cells = [flag, markdownCode(envName(name)), markdownCode(defaultText(spec))];
    return `| ${[...cells, markdownText(spec.description)].join(' | ')} |`;
  });
  return [HEADER, '| --- | --- | --- | --- |', ...rows];
}

/** README text with its options table replaced by `table`. */
export function replaceTable(readme: string, table: readonly string[]): string {
  const lines = readme.split('\n');
  const start = lines.findIndex((line) => /^\| flag +\| environment +\|/.test(line));
  if (start < 0) throw new Error('README.md has no options table');
  let end = start;
  while (end < lines.length && lines[end]!.startsWith('|')) end += 1;
  return [...lines.slice(0, start), ...table, ...lines.slice(end)].join('\n');
}

async function main(argv: readonly string[]): Promise<void> {
  const table = optionsTable();
  if (!argv.includes('--write')) {
    process.stdout.write(`${table.join('\n')}\n`);
    return;
  }
  const config = (await prettier.resolveConfig(README)) ?? {};
  const text = replaceTable(readFileSync(README, 'utf8'), table);
  writeFileSync(README, await prettier.format(text, { ...config, filepath: README }));
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
