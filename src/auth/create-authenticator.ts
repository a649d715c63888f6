import { OPTIONS, type AuthKind, type OptionValues } from '../config.js';
import { SidecastError } from '../errors.js';
import type { Authenticator } from './authenticator.js';
import { chainAuthenticators } from './chain.js';
import { createProxyAuthenticator, withProxyPermissions } from './proxy/authenticator.js';
import { createDjangoProxy, type DjangoProxy } from './proxy/client.js';
import type { DjangoSesameSettings } from './sesame/settings.js';
import { readSessionSettings } from './session/settings.js';

export type AuthenticatorOptions = OptionValues<
  | 'auth'
  | 'django-db'
  | 'scope'
  | 'auth-concurrency'
  | 'allowed-origins'
  | 'auth-url'
  | 'permissions-url'
  | 'proxy-secret'
  | 'proxy-timeout'
  | 'permissions-refresh'
>;

/** Database connections for the authenticator: one per concurrent authentication, 4 to 32. */
function poolSizeFor(authConcurrency: number): number {
  return Math.max(4, Math.min(authConcurrency, 32));
}

/**
 * A cookie goes with every request the browser makes to sidecast, whichever page makes it: only
 * the origin check keeps another site's page from connecting as the user (cross-site WebSocket
 * hijacking). So session authentication wants the site's own origins, named.
 */
export function namesSiteOrigins(allowedOrigins: readonly string[]): boolean {
  const defaults = OPTIONS['allowed-origins'].defaultValue;
  const isDefault =
    allowedOrigins.length === defaults.length &&
    allowedOrigins.every((origin, i) => origin === defaults[i]);
  return !isDefault && !allowedOrigins.some((origin) => origin.trim() === '*');
}

export function assertSessionOrigins(allowedOrigins: readonly string[]): void {
  if (!namesSiteOrigins(allowedOrigins)) {
    throw new SidecastError(
      'CONFIG_INVALID',
      '--auth session needs --allowed-origins to list the origins of your site (no "*", not the default): a session cookie would otherwise let any page connect as its user',
    );
  }
}

/** The Django endpoints, when --auth-url or --permissions-url name them; checked together. */
function djangoProxyOf(options: AuthenticatorOptions): DjangoProxy | undefined {
  const usesProxy = options.auth.includes('proxy');
  if (usesProxy && (options.authUrl === '' || options.permissionsUrl === '')) {
    throw new SidecastError(
      'CONFIG_INVALID',
      '--auth proxy needs --auth-url and --permissions-url',
    );
  }
  if (!usesProxy && options.authUrl !== '') {
    throw new SidecastError(
      'CONFIG_INVALID',
      '--auth-url is only read by --auth proxy: add it to --auth',
    );
  }
  if (options.authUrl === '' && options.permissionsUrl === '') return undefined;
  if (options.proxySecret === '') {
    throw new SidecastError(
      'CONFIG_INVALID',
      'SIDECAST_PROXY_SECRET must be set: the Django endpoints check it',
    );
  }
  return createDjangoProxy({
    authUrl: options.authUrl,
    permissionsUrl: options.permissionsUrl,
    secret: options.proxySecret,
    timeoutMs: options.proxyTimeout * 1000,
    cacheMs: options.permissionsRefresh * 1000,
  });
}

async function createOne(
  kind: AuthKind,
  options: AuthenticatorOptions,
  django: DjangoSesameSettings,
  proxy: DjangoProxy | undefined,
): Promise<Authenticator> {
  const poolSize = poolSizeFor(options.authConcurrency);
  switch (kind) {
    case 'sesame': {
      const { createSesameAuthenticator } = await import('./sesame/authenticator.js');
      return createSesameAuthenticator({
        databaseUrl: options.djangoDb,
        django,
        scope: options.scope,
        poolSize,
        snapshotTtlMs: options.permissionsRefresh * 1000,
      });
    }
    case 'session': {
      const { createSessionAuthenticator } = await import('./session/authenticator.js');
      return createSessionAuthenticator({
        databaseUrl: options.djangoDb,
        django,
        session: django.session ?? readSessionSettings({}),
        poolSize,
      });
    }
    case 'simplejwt': {
      const { createSimpleJwtAuthenticator } = await import('./simplejwt/authenticator.js');
      return createSimpleJwtAuthenticator({ databaseUrl: options.djangoDb, django, poolSize });
    }
    case 'proxy':
      return createProxyAuthenticator(proxy!, {
        forwardCookie: namesSiteOrigins(options.allowedOrigins),
      });
  }
}

/**
 * The authenticators --auth names, chained in that order when there are several. Each is
 * imported only when chosen, so a deployment loads the code of the ones it runs and no other.
 */
export async function createAuthenticator(
  options: AuthenticatorOptions,
  django: DjangoSesameSettings,
): Promise<Authenticator> {
  if (options.auth.includes('session')) assertSessionOrigins(options.allowedOrigins);
  const proxy = djangoProxyOf(options);
  const members: Authenticator[] = [];
  try {
    for (const kind of options.auth) members.push(await createOne(kind, options, django, proxy));
  } catch (error) {
    await Promise.all(members.map((member) => member.close()));
    throw error;
  }
  const authenticator = members.length === 1 ? members[0]! : chainAuthenticators(members);
  // Django's answer replaces the database's, whoever found the user.
  return proxy === undefined || options.permissionsUrl === ''
    ? authenticator
    : withProxyPermissions(authenticator, proxy);
}
