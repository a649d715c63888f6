/**
 * Reconnection delays. Each failed attempt doubles (by `factor`) a ceiling that starts at
 * `initialMs` and stops growing at `maxMs`; the actual delay is drawn uniformly between zero and
 * that ceiling ("full jitter"). The randomness matters more than the curve: after a deploy every
 * browser loses its connection at the same instant, and jitter spreads their returns (and their
 * token checks against the Django database) over the whole window instead of a few spikes.
 */
export interface BackoffOptions {
  /** Ceiling of the first retry delay, in milliseconds. Default 500. */
  readonly initialMs: number;
  /** Largest ceiling, in milliseconds. Default 30000. */
  readonly maxMs: number;
  /** Growth of the ceiling per consecutive failure. Default 2. */
  readonly factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2 };

/** The delay before retry number `attempt` (0 for the first retry after a failure). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * options.factor ** attempt);
  return Math.floor(random() * ceiling);
}

/** Fills in defaults and refuses bounds that would make the client spin or never retry. */
export function resolveBackoff(given: Partial<BackoffOptions> = {}): BackoffOptions {
  const options = { ...DEFAULT_BACKOFF, ...given };
  const { initialMs, maxMs, factor } = options;
  if (!(initialMs > 0 && maxMs >= initialMs && factor >= 1 && Number.isFinite(maxMs))) {
    throw new RangeError('sidecast: backoff needs 0 < initialMs <= maxMs (finite) and factor >= 1');
  }
  return options;
}
