import { availableParallelism } from 'node:os';
import { SidecastError } from './errors.js';
import {
  DEFAULT_SESAME_SETTINGS,
  type DjangoSettings,
  type SesameSettings,
} from './django/settings.js';

/**
 * The one config loader. Every option has one flag name, one SIDECAST_* environment variable and
 * one default, declared once in OPTIONS; `--help` and the README are written from the same table.
 * Flags win over the environment, which wins over defaults. The result is validated once and frozen.
 */
export type Env = Readonly<Record<string, string | undefined>>;

interface OptionSpec<T> {
  readonly description: string;
  readonly valueName: string;
  readonly defaultValue: T;
  /** Shown in --help when the default is computed or secret. */
  readonly defaultLabel?: string;
  /** False for secrets, which are read from the environment only. */
  readonly flag?: boolean;
  readonly parse: (raw: string, name: string) => T;
}

function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

function invalid(name: string, message: string): SidecastError {
  return new SidecastError('CONFIG_INVALID', `--${name}: ${message}`);
}

const asString = (raw: string): string => raw;

function asInteger(min: number, max: number) {
  return (raw: string, name: string): number => {
    if (!/^-?\d+$/.test(raw.trim())) throw invalid(name, `expected an integer, got "${raw}"`);
    const value = Number(raw);
    if (value < min || value > max) throw invalid(name, `must be between ${min} and ${max}`);
    return value;
  };
}

function asSeconds(raw: string, name: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw invalid(name, `expected a number of seconds, got "${raw}"`);
  }
  return value;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
};

function asBytes(raw: string, name: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined)
    throw invalid(name, `expected a size such as 1048576 or 1MiB, got "${raw}"`);
  return Number(match[1]) * unit;
}

function asChoice<T extends string>(...choices: T[]) {
  return (raw: string, name: string): T => {
    if (!(choices as string[]).includes(raw)) {
      throw invalid(name, `expected one of ${choices.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  };
}

function asBoolean(raw: string, name: string): boolean {
  if (/^(true|1|yes|on)$/i.test(raw.trim())) return true;
  if (/^(false|0|no|off)$/i.test(raw.trim())) return false;
  throw invalid(name, `expected true or false, got "${raw}"`);
}

function asList(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export type BusKind = 'redis' | 'memory';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const OPTIONS = {
  host: option({
    description: 'Address to listen on.',
    valueName: 'HOST',
    defaultValue: '127.0.0.1',
    parse: asString,
  }),
  port: option({
    description: 'Port to listen on (0 picks a free port).',
    valueName: 'PORT',
    defaultValue: 8888,
    parse: asInteger(0, 65535),
  }),
  'django-db': option({
    description:
      'Django database URL: postgres://USER@HOST:PORT/NAME, mysql://USER@HOST:PORT/NAME (MySQL and MariaDB) or sqlite:///ABSOLUTE/PATH.',
    valueName: 'URL',
    defaultValue: '',
    defaultLabel: 'required',
    parse: asString,
  }),
  bus: option({
    description: 'Event bus: redis (shared by every instance) or memory (this process only).',
    valueName: 'KIND',
    defaultValue: 'redis' as BusKind,
    parse: asChoice<BusKind>('redis', 'memory'),
  }),
  redis: option({
    description: 'Redis URL for the redis bus.',
    valueName: 'URL',
    defaultValue: 'redis://127.0.0.1:6379/1',
    parse: asString,
  }),
  channel: option({
    description: 'Redis pub/sub channel carrying the events.',
    valueName: 'NAME',
    defaultValue: 'events',
    parse: asString,
  }),
  scope: option({
    description: 'django-sesame scope the tokens were made for.',
    valueName: 'SCOPE',
    defaultValue: '',
    defaultLabel: '""',
    parse: asString,
  }),
  'allowed-origins': option({
    description:
      'Comma-separated browser origins allowed to connect; "*" wildcards allowed (https://*.example.com, http://localhost:*). Clients that send no Origin header (non-browsers) are always allowed.',
    valueName: 'LIST',
    defaultValue: [
      'http://localhost:*',
      'http://127.0.0.1:*',
      'http://[::1]:*',
    ] as readonly string[],
    parse: asList,
  }),
  'auth-timeout': option({
    description:
      'Seconds a new connection has to be authenticated: to send its token (else closed 1008) and for the database to answer (else closed 1013, try again later). Also bounds how long an HTTP request may take to send its headers.',
    valueName: 'SECONDS',
    defaultValue: 10,
    parse: asSeconds,
  }),
  'auth-concurrency': option({
    description: 'Authentications that may query the database at once; the rest wait their turn.',
    valueName: 'N',
    defaultValue: 16,
    parse: asInteger(1, 10_000),
  }),
  'max-buffered': option({
    description:
      'A connection\'s unsent data limit; past it the client is closed as too slow (1008 "slow consumer") and its events are dropped.',
    valueName: 'BYTES',
    defaultValue: 1024 * 1024,
    parse: asBytes,
  }),
  'max-connections': option({
    description:
      'Connections this process accepts at once (0: no limit); past it upgrades get HTTP 503.',
    valueName: 'N',
    defaultValue: 0,
    parse: asInteger(0, 10_000_000),
  }),
  'max-connections-per-user': option({
    description: 'Live connections per user (0: no limit); past it new ones are closed with 1008.',
    valueName: 'N',
    defaultValue: 0,
    parse: asInteger(0, 1_000_000),
  }),
  'ping-interval': option({
    description:
      'Seconds between keepalive pings; a peer that has not answered by the next ping is dropped (0: off).',
    valueName: 'SECONDS',
    defaultValue: 30,
    parse: asSeconds,
  }),
  'drain-seconds': option({
    description:
      'On SIGTERM/SIGINT: stop accepting, report not ready, close clients with 1001 spread over this many seconds, exit 0. A second signal exits at once (status 1).',
    valueName: 'SECONDS',
    defaultValue: 5,
    parse: asSeconds,
  }),
  'wait-for-bus': option({
    description:
      'false: start-up fails at once, with one line naming the problem, when the bus cannot be reached. true: start anyway, report not ready on /readyz and retry with backoff until it answers. (An unreachable database always fails start-up.)',
    valueName: 'BOOL',
    defaultValue: false as boolean,
    parse: asBoolean,
  }),
  workers: option({
    description: 'Worker processes sharing the port, each subscribed to the bus.',
    valueName: 'N',
    defaultValue: availableParallelism(),
    defaultLabel: 'one per core',
    parse: asInteger(1, 256),
  }),
  'log-level': option({
    description: 'Log level of the JSON logs.',
    valueName: 'LEVEL',
    defaultValue: 'info' as LogLevel,
    parse: asChoice<LogLevel>('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  }),
  'publish-key': option({
    description:
      'Bearer key that enables POST /publish (environment only: a secret never goes on a command line).',
    valueName: 'KEY',
    defaultValue: '',
    defaultLabel: 'unset: POST /publish disabled',
    flag: false,
    parse: asString,
  }),
} as const;

export type OptionName = keyof typeof OPTIONS;
type ValueOf<N extends OptionName> = (typeof OPTIONS)[N]['defaultValue'];
type CamelCase<S extends string> = S extends `${infer H}-${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S;
export type OptionValues<N extends OptionName> = { readonly [K in N as CamelCase<K>]: ValueOf<K> };

export function envName(name: string): string {
  return `SIDECAST_${name.toUpperCase().replaceAll('-', '_')}`;
}

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
  const options: Record<string, unknown> = {};
  for (const name of names) {
    const spec: OptionSpec<unknown> = OPTIONS[name];
    const source = raw.get(name) ?? env[envName(name)];
    options[camelCase(name)] =
      source === undefined || source === '' ? spec.defaultValue : spec.parse(source, name);
  }
  return { options: Object.freeze(options) as OptionValues<N>, positionals, extra, help };
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

/** Django settings mirrored by sidecast, documented in --help of the commands that read them. */
export const DJANGO_ENV_NOTES = [
  'Django settings, read from environment variables with their Django names and meaning:',
  '  DJANGO_SECRET_KEY (required), DJANGO_SECRET_KEY_FALLBACKS (comma-separated or a JSON list),',
  '  AUTH_USER_MODEL (default auth.User), USE_TZ (default True), SESAME_MAX_AGE (seconds; default None),',
  '  SESAME_KEY, SESAME_SIGNATURE_SIZE (default 10), SESAME_ONE_TIME (default False),',
  '  SESAME_INVALIDATE_ON_PASSWORD_CHANGE (default True), SESAME_INVALIDATE_ON_EMAIL_CHANGE (default False),',
  '  SESAME_PRIMARY_KEY_FIELD (default pk), SESAME_PACKER (default: chosen from the field type),',
  "  TIME_ZONE (default UTC; used when USE_TZ is False). User model attributes, when not Django's defaults:",
  '  AUTH_USER_DB_TABLE (Meta.db_table), USERNAME_FIELD (default username), EMAIL_FIELD (default email).',
];

function djangoInvalid(name: string, message: string): SidecastError {
  return new SidecastError('CONFIG_INVALID', `${name}: ${message}`);
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off|none)$/i.test(raw)) return false;
  throw djangoInvalid(name, `expected True or False, got "${raw}"`);
}

function readFallbacks(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  if (raw.trim().startsWith('[')) {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
      throw djangoInvalid('DJANGO_SECRET_KEY_FALLBACKS', 'expected a JSON list of strings');
    }
    return parsed;
  }
  return raw.split(',').filter((item) => item !== '');
}

function readMaxAge(raw: string | undefined): number | null {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'None') return null;
  const value = Number(raw);
  if (!Number.isFinite(value))
    throw djangoInvalid('SESAME_MAX_AGE', `expected seconds or None, got "${raw}"`);
  return value;
}

/** Reads the Django and django-sesame settings; fails with one clear line when they cannot work. */
export function loadDjangoSettings(env: Env): DjangoSettings {
  const secretKey = env.DJANGO_SECRET_KEY;
  if (secretKey === undefined || secretKey === '') {
    throw new SidecastError(
      'CONFIG_INVALID',
      'DJANGO_SECRET_KEY is not set: export the SECRET_KEY of your Django project',
    );
  }
  const signatureSize = Number(env.SESAME_SIGNATURE_SIZE ?? DEFAULT_SESAME_SETTINGS.signatureSize);
  if (!Number.isInteger(signatureSize) || signatureSize < 1 || signatureSize > 64) {
    throw djangoInvalid('SESAME_SIGNATURE_SIZE', 'must be an integer from 1 to 64');
  }
  const sesame: SesameSettings = Object.freeze({
    maxAge: readMaxAge(env.SESAME_MAX_AGE),
    oneTime: readBoolean(env, 'SESAME_ONE_TIME', DEFAULT_SESAME_SETTINGS.oneTime),
    invalidateOnPasswordChange: readBoolean(
      env,
      'SESAME_INVALIDATE_ON_PASSWORD_CHANGE',
      DEFAULT_SESAME_SETTINGS.invalidateOnPasswordChange,
    ),
    invalidateOnEmailChange: readBoolean(
      env,
      'SESAME_INVALIDATE_ON_EMAIL_CHANGE',
      DEFAULT_SESAME_SETTINGS.invalidateOnEmailChange,
    ),
    packer: env.SESAME_PACKER?.trim() ? env.SESAME_PACKER.trim() : null,
    primaryKeyField:
      env.SESAME_PRIMARY_KEY_FIELD?.trim() || DEFAULT_SESAME_SETTINGS.primaryKeyField,
    key: env.SESAME_KEY ?? DEFAULT_SESAME_SETTINGS.key,
    signatureSize,
  });
  if (sesame.maxAge === null && !sesame.invalidateOnPasswordChange) {
    // django-sesame refuses this combination (ImproperlyConfigured): tokens would never die.
    throw djangoInvalid(
      'SESAME_INVALIDATE_ON_PASSWORD_CHANGE',
      'cannot be False when SESAME_MAX_AGE is None',
    );
  }
  const authUserModel = env.AUTH_USER_MODEL?.trim() || 'auth.User';
  if (!/^\w+\.\w+$/.test(authUserModel)) {
    throw djangoInvalid(
      'AUTH_USER_MODEL',
      `expected "app_label.ModelName", got "${authUserModel}"`,
    );
  }
  return Object.freeze({
    secretKey,
    secretKeyFallbacks: Object.freeze(readFallbacks(env.DJANGO_SECRET_KEY_FALLBACKS)),
    authUserModel,
    useTz: readBoolean(env, 'USE_TZ', true),
    timeZone: env.TIME_ZONE?.trim() || 'UTC',
    // Attributes of the user model rather than settings; needed only when they differ from Django's defaults.
    userTable: env.AUTH_USER_DB_TABLE?.trim() || null,
    usernameField: env.USERNAME_FIELD?.trim() || null,
    emailField: env.EMAIL_FIELD?.trim() || null,
    sesame,
  });
}
