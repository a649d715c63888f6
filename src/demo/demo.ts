/**
 * `sidecast demo` without the command line: a throwaway SQLite database in Django's schema, the
 * real django-sesame authenticator over it, sidecast on the memory bus, simulated admin activity
 * and the demo page, all in this process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVE_OPTIONS, startSidecast, type Sidecast } from '../app.js';
import {
  createSesameAuthenticator,
  type SesameAuthenticator,
} from '../auth/sesame/authenticator.js';
import { loadDjangoSettings, optionsFrom, type LogLevel } from '../config.js';
import { createLogger } from '../log.js';
import { createDemoPage, resolveClientDir } from './page.js';
import {
  createEventSource,
  DEMO_SITE,
  DEMO_USERS,
  pythonJson,
  simulateActivity,
  type Action,
  type AdminEvent,
} from './scenario.js';
import { createDjangoSqlite, type SiteIds } from './schema.js';

export interface DemoOptions {
  readonly host: string;
  readonly port: number;
  /** Simulated admin actions come every 1 to 2 times this; 0 turns the simulation off. */
  readonly intervalMs: number;
  readonly logLevel: LogLevel;
  /** The compiled client to serve; found next to the build by default. */
  readonly clientDir?: string;
}

export interface Demo {
  /** http:// address of the page. */
  readonly url: string;
  readonly sidecast: Sidecast;
  readonly site: SiteIds;
  /** The temporary SQLite database (removed by stop()). */
  readonly databaseFile: string;
  /**
   * The Django settings the demo runs with, as the environment variables the CLI reads: with
   * them, `sidecast connect --as USER` and `sidecast token` mint tokens the demo accepts.
   */
  readonly djangoEnv: Readonly<Record<string, string>>;
  /** Publishes one admin event, made up unless given, and resolves to it. */
  publish(action?: Action, model?: string): Promise<AdminEvent>;
  /** Closes every client with 1001, stops sidecast and deletes the database. */
  stop(): Promise<void>;
}

/** Tokens live this long: the page and `connect --as` mint one for each connection. */
const TOKEN_MAX_AGE_SECONDS = 30;

function pageUrl(host: string, port: number): string {
  // A wildcard address is where the server listens, not where a browser can go.
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}/`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const clientDir = options.clientDir ?? resolveClientDir();
  const logger = createLogger(options.logLevel);
  const dir = mkdtempSync(join(tmpdir(), 'sidecast-demo-'));
  const databaseFile = join(dir, 'django.sqlite3');
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  let site: SiteIds;
  let authenticator: SesameAuthenticator;
  // A fresh secret per run: tokens from an earlier demo are worthless, as they should be. It
  // guards nothing but this throwaway database, so the demo may show it (see djangoEnv).
  const djangoEnv = {
    DJANGO_SECRET_KEY: randomBytes(32).toString('base64url'),
    SESAME_MAX_AGE: String(TOKEN_MAX_AGE_SECONDS),
  };
  try {
    site = createDjangoSqlite(databaseFile, DEMO_SITE);
    const django = loadDjangoSettings(djangoEnv);
    authenticator = await createSesameAuthenticator({
      databaseUrl: `sqlite://${databaseFile}`,
      django,
      scope: '',
      poolSize: 2,
    });
  } catch (error) {
    removeDir();
    throw error;
  }
  const serveOptions = optionsFrom(SERVE_OPTIONS, {
    host: options.host,
    port: options.port,
    bus: 'memory',
    djangoDb: `sqlite://${databaseFile}`,
    logLevel: options.logLevel,
    drainSeconds: 0,
    // Off loopback the page's origin is whatever name the browser used; the demo's token
    // endpoint is open to anyone who can reach it anyway, so the origin check guards nothing.
    ...(isLoopback(options.host) ? {} : { allowedOrigins: ['*'] }),
  });
  const mintToken = authenticator.mintToken.bind(authenticator);
  let sidecast: Sidecast;
  try {
    sidecast = await startSidecast({
      options: serveOptions,
      authenticator,
      logger,
      page: createDemoPage({
        clientDir,
        users: DEMO_USERS,
        mintToken: (username) => mintToken(username),
        onError: (error) => logger.error({ err: error }, 'demo token endpoint failed'),
      }),
    });
  } catch (error) {
    await authenticator.close().catch(() => undefined);
    removeDir();
    throw error;
  }
  const nextEvent = createEventSource(site.contentTypes);
  const publish = (payload: string) => sidecast.bus.publish(payload);
  const stopActivity =
    options.intervalMs > 0
      ? simulateActivity(nextEvent, publish, options.intervalMs, (error) =>
          logger.error({ err: error }, 'simulated event not published'),
        )
      : () => undefined;
  let stopped: Promise<void> | undefined;
  return {
    url: pageUrl(options.host, sidecast.port),
    sidecast,
    site,
    databaseFile,
    djangoEnv,
    async publish(action, model) {
      const event = nextEvent(action, model);
      await publish(pythonJson(event));
      return event;
    },
    stop() {
      stopped ??= (async () => {
        stopActivity();
        try {
          await sidecast.shutdown();
        } finally {
          removeDir();
        }
      })();
      return stopped;
    },
  };
}
