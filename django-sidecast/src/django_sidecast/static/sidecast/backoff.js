export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000, factor: 2 };
/** The delay before retry number `attempt` (0 for the first retry after a failure). */
export function backoffDelay(attempt, options, random = Math.random) {
    const ceiling = Math.min(options.maxMs, options.initialMs * options.factor ** attempt);
    return Math.floor(random() * ceiling);
}
/** Fills in defaults and refuses bounds that would make the client spin or never retry. */
export function resolveBackoff(given = {}) {
    const options = { ...DEFAULT_BACKOFF, ...given };
    const { initialMs, maxMs, factor } = options;
    if (!(initialMs > 0 && maxMs >= initialMs && factor >= 1 && Number.isFinite(maxMs))) {
        throw new RangeError('sidecast: backoff needs 0 < initialMs <= maxMs (finite) and factor >= 1');
    }
    return options;
}
//# sourceMappingURL=backoff.js.map