import { loadDjangoSettings, type Env } from '../config.js';
import { SidecastError } from '../errors.js';

/** The shared options that locate the Django database and the token scope, as `serve` reads them. */
export const DJANGO_TOKEN_OPTIONS = ['django-db', 'scope'] as const;

export interface DjangoTokenOptions {
  readonly djangoDb: string;
  readonly scope: string;
}

/**
 * Mints what sesame.utils.get_token(user, scope) returns at this second, with the settings `serve`
 * would use to check it, so `sidecast token` and `connect --as` make tokens that `serve` accepts.
 */
export async function mintDjangoToken(
  options: DjangoTokenOptions,
  env: Env,
  username: string,
): Promise<string> {
  if (options.djangoDb === '') {
    throw new SidecastError(
      'CONFIG_INVALID',
      'no Django database: pass --django-db URL or set SIDECAST_DJANGO_DB',
    );
  }
  const django = loadDjangoSettings(env);
  // Loaded on demand: connect without --as must not pay for the database drivers.
  const { createSesameAuthenticator } = await import('../auth/sesame/authenticator.js');
  const authenticator = await createSesameAuthenticator({
    databaseUrl: options.djangoDb,
    django,
    scope: options.scope,
    poolSize: 1,
  });
  try {
    return await authenticator.mintToken(username);
  } finally {
    await authenticator.close();
  }
}
