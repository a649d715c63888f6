/** What both Redis buses (pub/sub and streams) do alike with their connections. */

/** Backoff between reconnection attempts: grows to 5 s, with jitter so a fleet does not stampede. */
export function retryDelay(attempt: number): number {
  const ceiling = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** A connection error as one line: the system code (ECONNREFUSED, ETIMEDOUT) first when there is one. */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
