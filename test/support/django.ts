import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { spawnTracked } from './children.js';
import { freePort } from './ports.js';
import { buildVenv } from './python-venv.js';

/**
 * A real Django project for integration tests: examples/django installed with pip into a
 * project-local virtualenv, one throw-away database per site, and a long-lived Python process
 * (django-driver.py) that runs ORM, django-sesame and admin actions on request.
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DJANGO_PROJECT_DIR = join(REPO_ROOT, 'examples', 'django');
const VENV_DIR = join(DJANGO_PROJECT_DIR, '.venv');
const REQUIREMENTS = join(DJANGO_PROJECT_DIR, 'requirements.txt');
const DRIVER_SCRIPT = join(REPO_ROOT, 'test', 'support', 'django-driver.py');

const PG_ADMIN = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };
const MYSQL_ADMIN = { host: '127.0.0.1', port: 3306, user: 'root' };

export type DjangoDialect = 'postgres' | 'mysql' | 'sqlite';
export type DjangoUserModel = 'auth.User' | 'accounts_uuid.UuidUser' | 'accounts_big.BigUser';

/** The Django package the example project installs (requirements.txt names its folder). */
const PACKAGE_DIR = join(REPO_ROOT, 'django-sidecast');

/** The venv is rebuilt when requirements.txt or the package it installs changes. */
function buildDjangoVenv(): Promise<string> {
  return buildVenv({
    dir: VENV_DIR,
    cwd: DJANGO_PROJECT_DIR,
    requirements: REQUIREMENTS,
    inputs: [
      join(PACKAGE_DIR, 'pyproject.toml'),
      join(PACKAGE_DIR, 'README.md'),
      join(PACKAGE_DIR, 'src'),
    ],
  });
}

let venv: Promise<string> | undefined;

/**
 * Creates examples/django/.venv and installs requirements.txt into it (django-sidecast among
 * them), unless the hash recorded in the venv says that was already done. Returns its python.
 */
export function ensureDjangoVenv(): Promise<string> {
  venv ??= buildDjangoVenv().catch((error: unknown) => {
    venv = undefined; // let a later call retry, e.g. once the network is back
    throw error;
  });
  return venv;
}

export class DjangoCommandError extends Error {
  /** The Python exception class name, e.g. "DoesNotExist" or "DriverError". */
  readonly type: string;
  readonly traceback: string;

  constructor(command: string, type: string, message: string, traceback: string) {
    super(`django ${command}: ${type}: ${message}`);
    this.name = 'DjangoCommandError';
    this.type = type;
    this.traceback = traceback;
  }
}

interface Reply {
  id: number | null;
  ok: boolean;
  result?: unknown;
  error?: { type: string; message: string; traceback: string };
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * Form fields as a browser would post them: true is a ticked box, false (or null) an unticked one
 * (the field is left out), arrays are multi-selects.
 */
export type AdminFormData = Record<string, string | number | boolean | null | (string | number)[]>;

export interface AdminActor {
  /** Username of the superuser who acts; default "admin", created when missing. */
  username?: string;
  /** Accept-Language of the request; events are translated into it. */
  language?: string;
}

export interface CreateUserOptions {
  username: string;
  /** Omitted: an unusable password, as createsuperuser --noinput leaves. */
  password?: string;
  email?: string;
  isSuperuser?: boolean;
  isActive?: boolean;
  isStaff?: boolean;
  groups?: string[];
  /** "app_label.codename", e.g. "catalog.view_book". */
  perms?: string[];
}

/** Wraps one django-driver.py process: one JSON line per request, one per reply. */
export class DjangoDriver {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, Pending>();
  readonly #exited: Promise<void>;
  #nextId = 1;
  #stderr = '';
  #exitError: Error | undefined;

  constructor(python: string, env: NodeJS.ProcessEnv) {
    this.#child = spawn(python, [DRIVER_SCRIPT, DJANGO_PROJECT_DIR], {
      cwd: DJANGO_PROJECT_DIR,
      env,
      stdio: 'pipe',
    });
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-8000);
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => this.#onLine(line));
    this.#exited = new Promise((resolvePromise) => {
      this.#child.on('error', (error) => this.#fail(error.message));
      this.#child.on('close', (code, signal) => {
        this.#fail(`django driver exited (${signal ?? code})`);
        resolvePromise();
      });
    });
    this.#setBusy(false);
  }

  /** Runs one driver command; see django-driver.py for the commands and their arguments. */
  call<T>(command: string, args: object = {}): Promise<T> {
    if (this.#exitError) return Promise.reject(this.#exitError);
    const id = this.#nextId++;
    return new Promise<T>((resolvePromise, reject) => {
      this.#pending.set(id, {
        command,
        resolve: resolvePromise as (value: unknown) => void,
        reject,
      });
      this.#setBusy(true);
      this.#child.stdin.write(`${JSON.stringify({ id, command, args })}\n`);
    });
  }

  createUser(options: CreateUserOptions): Promise<{ pk: string; username: string }> {
    return this.call('createUser', options);
  }

  createGroup(options: { name: string; perms: string[] }): Promise<{ pk: number; name: string }> {
    return this.call('createGroup', options);
  }

  /** sesame.utils.get_token(user, scope) */
  getToken(options: { username: string; scope?: string }): Promise<string> {
    return this.call('getToken', options);
  }

  /** sesame.utils.get_user(token, scope, max_age): the username, or null when rejected. */
  getUser(options: { token: string; scope?: string; maxAge?: number }): Promise<string | null> {
    return this.call('getUser', options);
  }

  /** The websockets guide's get_content_types(user), sorted. */
  getContentTypes(options: { username: string }): Promise<number[]> {
    return this.call('getContentTypes', options);
  }

  contentTypeId(options: { appLabel: string; model: string }): Promise<number> {
    return this.call('contentTypeId', options);
  }

  /** Posts the admin add form of `model` ("catalog.book"); resolves to the new object's pk. */
  adminAdd(options: { model: string; data: AdminFormData } & AdminActor): Promise<string> {
    return this.call('adminAdd', options);
  }

  /** Posts the admin change form: the object's current values, overridden by `data`. */
  adminChange(
    options: { model: string; pk: string | number; data: AdminFormData } & AdminActor,
  ): Promise<string> {
    return this.call('adminChange', options);
  }

  /** Adds an author, then a book of theirs, through the admin: two events, author first. */
  async adminAddBook(book: { title: string; author: string; year: number }): Promise<string> {
    const author = await this.adminAdd({ model: 'catalog.author', data: { name: book.author } });
    const data = { title: book.title, author, year: book.year };
    return this.adminAdd({ model: 'catalog.book', data });
  }

  /** Confirms the admin delete page of one object. */
  adminDelete(options: { model: string; pk: string | number } & AdminActor): Promise<string> {
    return this.call('adminDelete', options);
  }

  /** The changelist action "Delete selected"; resolves to the number of objects. */
  adminDeleteSelected(
    options: { model: string; pks: (string | number)[] } & AdminActor,
  ): Promise<number> {
    return this.call('adminDeleteSelected', options);
  }

  /** Posts the admin "Change password" form of the user whose primary key is `pk`. */
  adminPasswordChange(
    options: { pk: string | number; password: string } & AdminActor,
  ): Promise<string> {
    return this.call('adminPasswordChange', options);
  }

  setPassword(options: { username: string; password: string }): Promise<void> {
    return this.call('setPassword', options);
  }

  setActive(options: { username: string; active: boolean }): Promise<void> {
    return this.call('setActive', options);
  }

  /** Executes Python with `args` in scope and resolves to what it assigns to `result`. */
  shell<T>(code: string, args: object = {}): Promise<T> {
    return this.call('shell', { code, args });
  }

  /** Ends the process (closing stdin lets it finish cleanly) and waits for it. */
  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.stdin.end();
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
  }

  #onLine(line: string): void {
    const reply = JSON.parse(line) as Reply;
    const pending = reply.id === null ? undefined : this.#pending.get(reply.id);
    if (!pending || reply.id === null) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#setBusy(false);
    if (reply.ok) pending.resolve(reply.result);
    else {
      const { type = 'Error', message = line, traceback = '' } = reply.error ?? {};
      pending.reject(new DjangoCommandError(pending.command, type, message, traceback));
    }
  }

  #fail(reason: string): void {
    this.#exitError ??= new Error(`${reason}\n${this.#stderr}`);
    for (const pending of this.#pending.values()) pending.reject(this.#exitError);
    this.#pending.clear();
  }

  /** An idle driver must not keep the test process alive if a test forgets close(). */
  #setBusy(busy: boolean): void {
    for (const handle of [this.#child, this.#child.stdout, this.#child.stderr, this.#child.stdin]) {
      const refable = handle as unknown as { ref?: () => void; unref?: () => void };
      if (busy) refable.ref?.();
      else refable.unref?.();
    }
  }
}

export interface DjangoSiteOptions {
  dialect: DjangoDialect;
  userModel?: DjangoUserModel;
  secretKey?: string;
  /** Redis pub/sub channel for events; default a unique one per site. */
  channel?: string;
  redisUrl?: string;
  /** django-sesame settings, "SESAME_ONE_TIME" or "ONE_TIME" alike. SESAME_MAX_AGE defaults to 30. */
  sesame?: Record<string, string>;
  /** Other settings read by examples/django/project/settings.py, e.g. USE_TZ. */
  env?: Record<string, string>;
}

export interface DjangoSite {
  readonly dialect: DjangoDialect;
  readonly userModel: DjangoUserModel;
  readonly dbUrl: string;
  readonly redisUrl: string;
  readonly channel: string;
  /** What the site runs with; a sidecast server for this site gets the same variables. */
  readonly env: Readonly<Record<string, string>>;
  readonly driver: DjangoDriver;
  /** Stops the driver and drops the database. */
  close(): Promise<void>;
}

/** Settings the example project reads; stripped from the inherited environment. */
const SETTING_NAMES =
  /^(DJANGO_|SESAME_|SIDECAST_|AUTH_USER_MODEL$|USE_TZ$|TIME_ZONE$|LANGUAGE_CODE$)/;

function uniqueSuffix(): string {
  return `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

interface Database {
  url: string;
  drop(): Promise<void>;
}

async function createDatabase(dialect: DjangoDialect): Promise<Database> {
  const name = `sidecast_django_${uniqueSuffix()}`;
  if (dialect === 'postgres') {
    const admin = async (sql: string): Promise<void> => {
      const client = new pg.Client(PG_ADMIN);
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await admin(`CREATE DATABASE "${name}"`);
    return {
      url: `postgres://${PG_ADMIN.user}@${PG_ADMIN.host}:${PG_ADMIN.port}/${name}`,
      // FORCE: a sidecast server under test may still hold connections.
      drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
    };
  }
  if (dialect === 'mysql') {
    const admin = async (sql: string): Promise<void> => {
      const connection = await mysql.createConnection(MYSQL_ADMIN);
      try {
        await connection.query(sql);
      } finally {
        await connection.end();
      }
    };
    await admin(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    return {
      url: `mysql://${MYSQL_ADMIN.user}@${MYSQL_ADMIN.host}:${MYSQL_ADMIN.port}/${name}`,
      drop: () => admin(`DROP DATABASE IF EXISTS \`${name}\``),
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'sidecast-django-'));
  return {
    url: `sqlite://${join(dir, 'db.sqlite3')}`,
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * A fresh, migrated Django site on its own database. Migrations run once, inside the driver
 * process, so a site costs one Python start-up.
 */
export async function createDjangoSite(options: DjangoSiteOptions): Promise<DjangoSite> {
  const python = await ensureDjangoVenv();
  const userModel = options.userModel ?? 'auth.User';
  const redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379/1';
  const channel = options.channel ?? `sidecast-test-events-${uniqueSuffix()}`;
  const sesame = Object.fromEntries(
    Object.entries(options.sesame ?? {}).map(([key, value]) => [
      key.startsWith('SESAME_') ? key : `SESAME_${key}`,
      value,
    ]),
  );
  const database = await createDatabase(options.dialect);
  const env: Record<string, string> = {
    DJANGO_SECRET_KEY:
      options.secretKey ?? `sidecast-test-${randomBytes(24).toString('base64url')}`,
    AUTH_USER_MODEL: userModel,
    SESAME_MAX_AGE: '30',
    ...sesame,
    ...options.env,
    SIDECAST_DJANGO_DB: database.url,
    SIDECAST_REDIS: redisUrl,
    SIDECAST_CHANNEL: channel,
  };
  // Control messages of one site's users must not reach another test's servers.
  env.SIDECAST_CONTROL_CHANNEL ??= `sidecast-test-control-${uniqueSuffix()}`;
  const inherited = Object.entries(process.env).filter(([key]) => !SETTING_NAMES.test(key));
  const driver = new DjangoDriver(python, {
    ...Object.fromEntries(inherited),
    ...env,
    DJANGO_SETTINGS_MODULE: 'project.settings',
    DJANGO_DEBUG: 'false',
  });
  try {
    await driver.call('migrate');
  } catch (error) {
    await driver.close();
    await database.drop();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    dialect: options.dialect,
    userModel,
    dbUrl: database.url,
    redisUrl,
    channel,
    env: Object.freeze(env),
    driver,
    close() {
      closing ??= driver.close().then(() => database.drop());
      return closing;
    },
  };
}

/** `manage.py runserver` with the site's settings, resolved once it answers HTTP. */
export async function runserver(
  site: DjangoSite,
  sidecastUrl: string,
  port?: number,
): Promise<{ url: string; child: ChildProcess }> {
  const python = await ensureDjangoVenv();
  port ??= await freePort();
  const inherited = Object.entries(process.env).filter(([key]) => !SETTING_NAMES.test(key));
  const child = spawnTracked(
    python,
    ['manage.py', 'runserver', `127.0.0.1:${port}`, '--noreload'],
    {
      cwd: DJANGO_PROJECT_DIR,
      env: { ...Object.fromEntries(inherited), ...site.env, SIDECAST_URL: sidecastUrl },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`runserver exited:\n${stderr}`);
    const answer = await fetch(`${url}/admin/login/`).catch(() => undefined);
    if (answer?.ok) break;
    if (Date.now() > deadline) throw new Error(`runserver did not answer:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { url, child };
}
