import type { Redis } from 'ioredis';

/**
 * Hang detection for a Redis connection. A Redis that stops answering (stopped, swapping, stuck)
 * keeps its connections open, so no error ever comes: the connection is sent a PING every
 * interval, and one unanswered for `hangAfterMs` counts as a hang until an answer arrives.
 */
export interface PingWatchOptions {
  readonly client: Redis;
  readonly intervalMs: number;
  readonly hangAfterMs: number;
  /** Whether to watch now (for example only once subscribed); default: while the client is ready. */
  readonly active?: () => boolean;
  /** Redis stopped answering; called once per hang. */
  readonly onStall: (silentMs: number) => void;
  /** Redis answers again after onStall. */
  readonly onAnswer: () => void;
}

export interface PingWatch {
  readonly stalled: boolean;
  /** How long the PING awaiting its answer has been waiting (0 when none is). */
  silentMs(): number;
  /** The connection was lost: a late answer to an old PING says nothing about the new one. */
  reset(): void;
  stop(): void;
}

export function watchPings(options: PingWatchOptions): PingWatch {
  const { client, hangAfterMs } = options;
  let sentAt: number | undefined;
  let stalled = false;
  let generation = 0;

  const active = options.active ?? (() => true);

  function tick(): void {
    if (!active() || client.status !== 'ready') return;
    if (sentAt === undefined) {
      const mine = ++generation;
      sentAt = Date.now();
      client.ping().then(
        () => {
          if (mine !== generation || !active()) return;
          sentAt = undefined;
          if (!stalled) return;
          stalled = false;
          options.onAnswer();
        },
        // A timed-out or failed PING: send another, so that the first answer ends the hang.
        () => {
          if (mine === generation) sentAt = undefined;
        },
      );
      return;
    }
    if (stalled || Date.now() - sentAt < hangAfterMs) return;
    // Timers run before pending socket reads: let an answer already received be read first,
    // so that a busy event loop here is not taken for a hung Redis.
    const mine = generation;
    setImmediate(() => {
      if (mine !== generation || sentAt === undefined || stalled || !active()) return;
      stalled = true;
      options.onStall(Date.now() - sentAt);
    });
  }

  const timer = setInterval(tick, options.intervalMs).unref();
  return {
    get stalled() {
      return stalled;
    },
    silentMs: () => (sentAt === undefined ? 0 : Date.now() - sentAt),
    reset() {
      generation++;
      sentAt = undefined;
      stalled = false;
    },
    stop: () => clearInterval(timer),
  };
}
