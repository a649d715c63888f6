/**
 * Runs at most `concurrency` tasks at once; the others wait in arrival order. Keeps an
 * authentication storm from opening more database work than the pool can answer.
 */
export interface Limiter {
  run<T>(task: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly waiting: number;
}

export function createLimiter(concurrency: number): Limiter {
  let active = 0;
  const queue: (() => void)[] = [];
  return {
    async run(task) {
      // A finishing task hands its slot straight to the next waiter, so nobody can jump the queue.
      if (active >= concurrency) await new Promise<void>((resolve) => queue.push(resolve));
      else active++;
      try {
        return await task();
      } finally {
        const next = queue.shift();
        if (next) next();
        else active--;
      }
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}
