import type { OptionValues } from '../config.js';
import type { Authenticator } from './authenticator.js';
import type { DjangoSesameSettings } from './sesame/settings.js';

export type AuthenticatorOptions = OptionValues<
  'auth' | 'django-db' | 'scope' | 'auth-concurrency'
>;

/** Database connections for the authenticator: one per concurrent authentication, 4 to 32. */
function poolSizeFor(authConcurrency: number): number {
  return Math.max(4, Math.min(authConcurrency, 32));
}

/**
 * The authenticator --auth names. Each is imported only when chosen, so a deployment loads the
 * code of the one it runs and no other.
 */
export async function createAuthenticator(
  options: AuthenticatorOptions,
  django: DjangoSesameSettings,
): Promise<Authenticator> {
  switch (options.auth) {
    case 'sesame': {
      const { createSesameAuthenticator } = await import('./sesame/authenticator.js');
      return createSesameAuthenticator({
        databaseUrl: options.djangoDb,
        django,
        scope: options.scope,
        poolSize: poolSizeFor(options.authConcurrency),
      });
    }
  }
}
