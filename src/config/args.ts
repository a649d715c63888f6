import { SidecastError } from '../errors.js';
import {
  envName,
  OPTIONS,
  type Env,
  type OptionName,
  type OptionSpec,
  type OptionValues,
} from './options.js';

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

export interface ParsedArgs<N extends OptionName> {
  readonly options: OptionValues<N>;
  /** Non-option arguments, in order. */
  readonly positionals: readonly string[];
  /** Flags of the command itself (such as connect's --token) that are not shared options. */
  readonly extra: Readonly<Record<string, string | boolean>>;
  readonly help: boolean;
}

/** The text form of a typed value, as a flag or SIDECAST_* variable would carry it. */
function asRaw(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

/**
 * Typed options for `names`: the values given, every other one OPTIONS' default, frozen. A value
 * given goes through its option's own parser, from its text form, so that code passing options
 * (the demo, embedders) meets the same bounds as a command line; an empty string counts as not
 * given, as an empty variable does. parseArgs builds its result here too: one path for both.
 */
export function optionsFrom<N extends OptionName>(
  names: readonly N[],
  values: Partial<OptionValues<N>> = {},
): OptionValues<N> {
  const given = values as Readonly<Record<string, unknown>>;
  const options: Record<string, unknown> = {};
  for (const name of names) {
    const spec: OptionSpec<unknown> = OPTIONS[name];
    const key = camelCase(name);
    const value = given[key];
    options[key] =
      value === undefined || value === '' ? spec.defaultValue : spec.parse(asRaw(value), name);
  }
  return Object.freeze(options) as OptionValues<N>;
}

/** Extra flags a command declares for itself: value flags take a value, boolean flags do not. */
export interface CommandFlag {
  readonly description: string;
  readonly valueName?: string;
  readonly env?: string;
  readonly defaultLabel?: string;
}

/**
 * Parses argv (after the command name) against the named shared options and the command's own flags.
 * Unknown flags are errors. `--name value` and `--name=value` both work.
 */
export function parseArgs<N extends OptionName>(
  names: readonly N[],
  argv: readonly string[],
  env: Env,
  commandFlags: Readonly<Record<string, CommandFlag>> = {},
): ParsedArgs<N> {
  const raw = new Map<string, string>();
  const extra: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const shared = (names as readonly string[]).includes(name) ? OPTIONS[name as N] : undefined;
    const own = commandFlags[name];
    if ((!shared || shared.flag === false) && !own) {
      throw new SidecastError('CONFIG_INVALID', `unknown option --${name} (see --help)`);
    }
    const takesValue = shared !== undefined || own?.valueName !== undefined;
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (takesValue) {
      value = argv[++i];
      if (value === undefined) throw new SidecastError('CONFIG_INVALID', `--${name} needs a value`);
    }
    if (shared) raw.set(name, value!);
    else extra[name] = takesValue ? value! : true;
  }
  for (const [name, flag] of Object.entries(commandFlags)) {
    const fromEnv = flag.env ? env[flag.env] : undefined;
    if (extra[name] === undefined && fromEnv !== undefined && fromEnv !== '') extra[name] = fromEnv;
  }
  const values: Record<string, unknown> = {};
  for (const name of names) {
    const source = raw.get(name) ?? env[envName(name)];
    if (source !== undefined && source !== '')
      values[camelCase(name)] = OPTIONS[name].parse(source, name);
  }
  const options = optionsFrom(names, values as Partial<OptionValues<N>>);
  return { options, positionals, extra, help };
}

function describeDefault(spec: OptionSpec<unknown>): string {
  if (spec.defaultLabel) return spec.defaultLabel;
  const value = spec.defaultValue;
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}

export function formatHelp(
  usage: string,
  summary: string,
  names: readonly OptionName[],
  commandFlags: Readonly<Record<string, CommandFlag>> = {},
  notes: readonly string[] = [],
): string {
  const rows: [string, string][] = [];
  for (const [name, flag] of Object.entries(commandFlags)) {
    const left = `--${name}${flag.valueName ? ` ${flag.valueName}` : ''}`;
    const meta = [
      flag.defaultLabel ? `default: ${flag.defaultLabel}` : '',
      flag.env ? `env ${flag.env}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    rows.push([left, `${flag.description}${meta ? ` [${meta}]` : ''}`]);
  }
  for (const name of names) {
    const spec: OptionSpec<unknown> = OPTIONS[name];
    const left = spec.flag === false ? envName(name) : `--${name} ${spec.valueName}`;
    const envPart = spec.flag === false ? 'environment only' : `env ${envName(name)}`;
    rows.push([left, `${spec.description} [default: ${describeDefault(spec)}; ${envPart}]`]);
  }
  rows.push(['--help', 'Show this help.']);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const lines = rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`);
  return [
    `Usage: ${usage}`,
    '',
    summary,
    '',
    'Options:',
    ...lines,
    ...(notes.length ? ['', ...notes] : []),
    '',
  ].join('\n');
}
