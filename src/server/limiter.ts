import { SidecastError } from '../errors.js';

/**
 * Runs at most `concurrency` tasks at once; the others wait in arrival order. Keeps an
 * authentication storm from opening more database work than the pool can answer.
 *
 * A task whose signal aborts while it waits leaves the queue without running (its client has
 * gone or given up). A task whose signal aborts while it runs is abandoned: run() rejects and the
 * slot is given back at once. The work may still finish in the background, but a database that
 * hangs must not hold every slot forever and so refuse all later clients after it has recovered.
 */
export interface Limiter {
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  readonly active: number;
  readonly waiting: number;
}

function abortReason(signal: AbortSignal): Error {
  if (signal.reason instanceof Error) return signal.reason;
  // Whoever aborts gives an Error (sidecast always does); anything else is a caller's mistake.
  return new SidecastError('INTERNAL', 'aborted', { cause: signal.reason });
}

export function createLimiter(concurrency: number): Limiter {
  let active = 0;
  // A Set keeps arrival order and lets an aborted waiter leave in O(1).
  const queue = new Set<() => void>();

  function release(): void {
    // A finishing task hands its slot straight to the next waiter, so nobody can jump the queue.
    const next = queue.values().next();
    if (next.done) active--;
    else {
      queue.delete(next.value);
      next.value();
    }
  }

  function acquire(signal: AbortSignal | undefined): Promise<void> {
    if (active < concurrency) {
      active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', leave);
        resolve();
      };
      const leave = () => {
        queue.delete(grant);
        reject(abortReason(signal!));
      };
      queue.add(grant);
      signal?.addEventListener('abort', leave, { once: true });
    });
  }

  return {
    async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      if (signal?.aborted) throw abortReason(signal);
      await acquire(signal);
      try {
        // The slot goes back when the task settles or the signal aborts, whichever comes first.
        return await new Promise<T>((resolve, reject) => {
          const abandon = () => reject(abortReason(signal!));
          if (signal?.aborted) return abandon();
          signal?.addEventListener('abort', abandon, { once: true });
          task()
            .then(resolve, reject)
            .finally(() => signal?.removeEventListener('abort', abandon));
        });
      } finally {
        release();
      }
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.size;
    },
  };
}
