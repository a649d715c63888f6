import { availableParallelism } from 'node:os';
import { BUS_DRIVERS, BUS_KINDS, type BusKind } from '../bus/create-bus.js';
import { SidecastError } from '../errors.js';

export type { BusKind };

export type Env = Readonly<Record<string, string | undefined>>;

export interface OptionSpec<T> {
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

/** A NATS subject token or stream name: no spaces, dots or wildcards. */
function asSubjectToken(raw: string, name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(raw))
    throw invalid(name, `expected letters, digits, "-" or "_", got "${raw}"`);
  return raw;
}

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

function asBytesBetween(min: number, max: number) {
  return (raw: string, name: string): number => {
    const value = asBytes(raw, name);
    if (value < min || value > max) throw invalid(name, `must be between ${min} and ${max} bytes`);
    return value;
  };
}

/** The longest bearer key; the HTTP routes read no Authorization header longer than it needs. */
export const MAX_KEY_LENGTH = 256;

/**
 * A bearer key goes into an HTTP header, which Node reads as Latin-1 with the surrounding spaces
 * dropped: a key outside printable ASCII, or with spaces at either end, could never match.
 */
function asKey(raw: string, name: string): string {
  // Keys are environment-only, so the error names the variable, not a flag.
  const refuse = (message: string) =>
    new SidecastError('CONFIG_INVALID', `${envName(name)}: ${message}`);
  if (raw.length > MAX_KEY_LENGTH) throw refuse(`at most ${MAX_KEY_LENGTH} characters`);
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(raw))
    throw refuse('printable ASCII only, without spaces at either end');
  return raw;
}

function asChoice<T extends string>(...choices: T[]) {
  return (raw: string, name: string): T => {
    if (!(choices as string[]).includes(raw)) {
      throw invalid(name, `expected one of ${choices.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  };
}

function asAuthKinds(raw: string, name: string): readonly AuthKind[] {
  const kinds = asList(raw).map((kind) => asChoice<AuthKind>(...AUTH_KINDS)(kind, name));
  if (kinds.length === 0) throw invalid(name, `expected one or more of ${AUTH_KINDS.join(', ')}`);
  if (new Set(kinds).size !== kinds.length) throw invalid(name, 'names an authenticator twice');
  return kinds;
}

function asHttpUrl(raw: string, name: string): string {
  if (raw === '') return raw;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(name, `expected an http:// or https:// URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid(name, `expected an http:// or https:// URL, got "${raw}"`);
  return raw;
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

/** "a, b or c". */
function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** Authenticators, one folder each under src/auth/ (see create-authenticator.ts). */
export const AUTH_KINDS = ['sesame', 'session', 'simplejwt', 'proxy'] as const;
export type AuthKind = (typeof AUTH_KINDS)[number];
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Every option of every command: one flag name, one SIDECAST_* environment variable, one default
 * and one description, declared once here; --help and the README are written from this table.
 */
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
  auth: option({
    description:
      'How clients authenticate, one or more in the order tried (comma-separated): sesame (a django-sesame token as the first message), session (the Django session cookie of the upgrade request; needs explicit --allowed-origins), simplejwt (a SimpleJWT access token as the first message), proxy (Django itself, at --auth-url). The first three read the Django database.',
    valueName: 'KINDS',
    defaultValue: ['sesame'] as readonly AuthKind[],
    parse: asAuthKinds,
  }),
  // One of the drivers of the registry, src/bus/create-bus.ts, which lists the options of each.
  bus: option({
    description: `Event bus: ${orList(BUS_DRIVERS.map(({ kind, summary }) => `${kind} (${summary})`))}.`,
    valueName: 'KIND',
    defaultValue: 'redis' as BusKind,
    parse: asChoice<BusKind>(...BUS_KINDS),
  }),
  // The redis bus's options (redisDriver, src/bus/redis-bus.ts); --redis is redis-streams's too.
  redis: option({
    description: 'Redis URL for the redis and redis-streams buses.',
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
  'control-channel': option({
    description:
      'Redis pub/sub channel carrying control messages (whose permissions changed) for the redis and redis-streams buses.',
    valueName: 'NAME',
    defaultValue: 'sidecast:control',
    parse: asString,
  }),
  // The NATS buses' options (natsDriver, src/bus/nats-bus.ts; natsJetStreamDriver,
  // src/bus/nats-jetstream-bus.ts).
  nats: option({
    description:
      'NATS servers for the nats and nats-jetstream buses, comma-separated (any servers of one NATS cluster; the client finds the others).',
    valueName: 'URL[,URL…]',
    defaultValue: 'nats://127.0.0.1:4222',
    parse: asString,
  }),
  'nats-subject-prefix': option({
    description:
      'Subject prefix of the NATS buses: events travel on PREFIX.events.<content_type_id>, control messages on PREFIX.control.',
    valueName: 'PREFIX',
    defaultValue: 'sidecast',
    parse: asSubjectToken,
  }),
  'nats-stream': option({
    description:
      'JetStream stream keeping the events for the nats-jetstream bus (created when missing, capturing PREFIX.events.*, bounded by --history-max-entries and --history-max-age).',
    valueName: 'NAME',
    defaultValue: 'SIDECAST',
    parse: asSubjectToken,
  }),
  'nats-stream-replicas': option({
    description:
      'Servers holding a copy of the JetStream stream when sidecast creates it (3 survives the loss of one server of three).',
    valueName: 'N',
    defaultValue: 1,
    parse: asInteger(1, 5),
  }),
  // The redis-cluster bus's options (redisClusterDriver, src/bus/redis-cluster-bus.ts).
  'redis-cluster': option({
    description:
      'Seed nodes of the Redis Cluster for the redis-cluster bus, comma-separated: events travel on the shard channels CHANNEL:<content_type_id> (--channel), control messages on --control-channel.',
    valueName: 'URL[,URL…]',
    defaultValue: 'redis://127.0.0.1:7000',
    parse: asString,
  }),
  // The redis-streams bus's options (redisStreamsDriver, src/bus/redis-streams-bus.ts).
  stream: option({
    description:
      'Redis stream carrying the events for the redis-streams bus; its epoch is kept in the key STREAM:epoch.',
    valueName: 'NAME',
    defaultValue: 'events',
    parse: asString,
  }),
  'history-max-entries': option({
    description:
      'Entries the stream keeps (redis-streams and nats-jetstream buses): POST /publish and sidecast publish add with XADD MAXLEN ~ N, and Django should too. Also the most events kept in memory for replays (at most 64 MiB).',
    valueName: 'N',
    defaultValue: 10_000,
    parse: asInteger(1, 10_000_000),
  }),
  'history-max-age': option({
    description:
      'Seconds of history a replay may reach (redis-streams and nats-jetstream buses): a client that missed events older than this is told it cannot be recovered.',
    valueName: 'SECONDS',
    defaultValue: 300,
    parse: asSeconds,
  }),
  // The Django proxy (src/auth/proxy/): endpoints of the project that answer for Django itself.
  'auth-url': option({
    description:
      'Django endpoint that authenticates a client (--auth proxy): POSTed the first message and the Cookie header, it answers the user.',
    valueName: 'URL',
    defaultValue: '',
    defaultLabel: 'unset',
    parse: asHttpUrl,
  }),
  'permissions-url': option({
    description:
      "Django endpoint that computes users' content types with user.has_perm (all AUTHENTICATION_BACKENDS), whichever authenticator found the user.",
    valueName: 'URL',
    defaultValue: '',
    defaultLabel: 'unset: read from the database',
    parse: asHttpUrl,
  }),
  'proxy-secret': option({
    description:
      'Shared secret sent as a bearer token to --auth-url and --permissions-url (environment only).',
    valueName: 'KEY',
    defaultValue: '',
    defaultLabel: 'required with either URL',
    flag: false,
    parse: asKey,
  }),
  'proxy-timeout': option({
    description:
      'Seconds --auth-url and --permissions-url have to answer; a slower or failed answer closes the client with 1013, never retried.',
    valueName: 'SECONDS',
    defaultValue: 3,
    parse: asSeconds,
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
      'Seconds a new connection has to be authenticated: to send its token (else closed 1008) and for the database to answer (else closed 1013, try again later). Also bounds how long an HTTP request may take to send its headers: a slower one gets 408 within a tenth of this (at most 1 s) after it.',
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
  'permissions-refresh': option({
    description:
      'Seconds between two re-checks of every live user against the database, in batches spread over the interval: changed permissions apply to open connections in place, and a user made inactive, deleted or given a new password is closed with 1008 "access revoked". Also how long a user\'s permissions are reused across their connections. Control messages apply changes at once. 0: never on a schedule, no reuse.',
    valueName: 'SECONDS',
    defaultValue: 60,
    parse: asSeconds,
  }),
  'max-event-bytes': option({
    description:
      'Largest event: POST /publish refuses a larger one with 413, sidecast publish with an error, and fan-out drops one arriving on the bus (logged, counted as too_large). Publish an id and let clients fetch the rest instead of large bodies.',
    valueName: 'BYTES',
    defaultValue: 1024 * 1024,
    // Redis cuts off a subscriber whose output buffer passes 32 MB (8 MB for a minute) by default.
    parse: asBytesBetween(1024, 8 * 1024 * 1024),
  }),
  'max-buffered': option({
    description:
      'Unsent data a connection may hold besides one event of up to --max-event-bytes; past it the client is closed as too slow (1008 "slow consumer") and its events are dropped.',
    valueName: 'BYTES',
    defaultValue: 1024 * 1024,
    parse: asBytes,
  }),
  'recover-max': option({
    description:
      'Protocol v1: the most history entries one resuming client may have replayed (all of them scanned, whatever the user may see); a client that missed more is told recovered false and must refetch (0: never replay).',
    valueName: 'N',
    defaultValue: 1000,
    parse: asInteger(0, 1_000_000),
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
  'interest-hold': option({
    description:
      'Buses that route by interest (nats, redis-cluster): seconds a content type stays subscribed after its last connection that may see it has gone, so that reconnecting clients do not make the bus subscribe and unsubscribe again and again.',
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
    parse: asKey,
  }),
  'metrics-key': option({
    description:
      'Bearer key that GET /metrics requires when set (environment only); unset, /metrics answers anyone who can reach the port.',
    valueName: 'KEY',
    defaultValue: '',
    defaultLabel: 'unset: /metrics open',
    flag: false,
    parse: asKey,
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
