import type { Authenticator, Credential, Principal } from '../auth/authenticator.js';
import { carries } from '../auth/chain.js';
import { authFailed, closeOf, isSidecastError } from '../errors.js';
import type { LogLimiter } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Limiter } from './limiter.js';

/** How one authentication ended: a principal, or what the authenticator threw. */
export type Attempt =
  | { readonly principal: Principal }
  | { readonly principal?: undefined; readonly error: unknown; readonly started: number };

/** The close a refused client gets. */
export interface Refusal {
  readonly code: number;
  readonly reason: string;
}

/** Authentication as every connection of a server shares it. */
export interface Authentication {
  /** True when a connection with these upgrade headers is authenticated without any message. */
  authenticatesOnOpen(headers: Credential['headers']): boolean;
  /**
   * Runs the authenticator under --auth-concurrency until it answers or `signal` aborts; never
   * rejects. A success is timed and counted here, whether or not its client still waits (the
   * work was done); a failure is only returned, for `refuse` if someone is left to tell.
   */
  attempt(credential: Credential, signal: AbortSignal): Promise<Attempt>;
  /** Times, counts and logs a failure whose client still waits; says how to close it. */
  refuse(failure: Attempt & { readonly principal?: undefined }): Refusal;
}

export interface AuthenticationDependencies {
  readonly authenticator: Authenticator;
  readonly limiter: Limiter;
  readonly metrics: Metrics;
  /** Anyone can send a bad token: one line per outcome per interval, exact metrics. */
  readonly refusalLog: LogLimiter;
}

export function createAuthentication(deps: AuthenticationDependencies): Authentication {
  const { authenticator, limiter, metrics, refusalLog } = deps;
  return {
    // Headers alone: nothing to wait for. Either: only if the headers hold a credential.
    authenticatesOnOpen: (headers) =>
      authenticator.reads === 'headers' ||
      (authenticator.reads === 'either' &&
        (authenticator.carries?.({ token: '', headers }) ?? false)),
    async attempt(credential, signal) {
      const started = performance.now();
      // Nothing this scheme reads (no token, no cookie): refused without asking anyone.
      if (!carries(authenticator, credential)) {
        return { error: authFailed('no credential in the connection'), started };
      }
      try {
        const principal = await limiter.run(() => authenticator.authenticate(credential), signal);
        metrics.authSeconds.observe((performance.now() - started) / 1000);
        metrics.authentications.inc({ outcome: 'success' });
        return { principal };
      } catch (error) {
        return { error, started };
      }
    },
    refuse({ error, started }) {
      metrics.authSeconds.observe((performance.now() - started) / 1000);
      if (isSidecastError(error) && error.closeCode !== undefined) {
        const outcome = error.code === 'AUTH_UNAVAILABLE' ? 'unavailable' : 'failed';
        metrics.authentications.inc({ outcome });
        const fields = { outcome, detail: error.message };
        refusalLog.log(
          outcome === 'unavailable' ? 'warn' : 'info',
          outcome,
          fields,
          'authentication refused',
        );
        return { code: error.closeCode, reason: error.closeReason ?? '' };
      }
      metrics.authentications.inc({ outcome: 'unavailable' });
      refusalLog.log('error', 'crashed', { err: error }, 'authentication crashed');
      return closeOf('AUTH_UNAVAILABLE');
    },
  };
}
