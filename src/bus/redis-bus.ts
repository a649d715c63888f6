import { isUtf8 } from 'node:buffer';
import { Redis } from 'ioredis';
import { SidecastError } from '../errors.js';
import { redactUrl } from '../log.js';
import type { Bus, BusObserver } from './bus.js';

export interface RedisBusOptions {
  readonly url: string;
  readonly channel: string;
  readonly observer?: BusObserver;
}

/** Backoff between reconnection attempts: grows to 5 s, with jitter so a fleet does not stampede. */
function retryDelay(attempt: number): number {
  const ceiling = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}

/**
 * Redis pub/sub. One subscriber connection per process; ioredis reconnects with backoff, and this
 * driver subscribes again each time the connection is ready. The bus counts as ready only once
 * Redis has confirmed the subscription, so /readyz never claims events are flowing before they
 * can. Each outage is reported once, however many reconnection attempts fail meanwhile.
 * Publishing uses a second connection, opened on first use, because a subscribed connection
 * cannot publish.
 */
export function createRedisBus(options: RedisBusOptions): Bus {
  const { url, channel, observer } = options;
  const where = redactUrl(url);
  let subscriber: Redis | undefined;
  let publisher: Redis | undefined;
  let subscribed = false;
  let everSubscribed = false;
  let outageReported = false;
  let closed = false;
  let detail = 'not started';

  function connection(role: string): Redis {
    return new Redis(url, {
      lazyConnect: true,
      connectionName: `sidecast-${role}`,
      retryStrategy: retryDelay,
      maxRetriesPerRequest: role === 'publisher' ? 1 : null,
      autoResubscribe: false,
      connectTimeout: 5000,
      ...(role === 'publisher' ? { commandTimeout: 5000 } : {}),
    });
  }

  return {
    kind: 'redis',
    async start(onMessage, startOptions = {}) {
      const failFast = startOptions.failFast ?? false;
      const client = connection('subscriber');
      subscriber = client;
      let first!: { resolve: () => void; reject: (error: Error) => void };
      const firstSubscription = new Promise<void>((resolve, reject) => {
        first = { resolve, reject };
      });

      function markDown(why: string): void {
        if (closed) return;
        detail = why;
        const wasUp = subscribed;
        subscribed = false;
        if (failFast && !everSubscribed) {
          // Start-up reports this itself, as its one line; no log line before it.
          first.reject(new SidecastError('BUS_UNAVAILABLE', why));
          return;
        }
        if (wasUp || !outageReported) {
          outageReported = true;
          observer?.onDown?.(why);
        }
      }

      client.on('error', (error: unknown) =>
        markDown(`cannot reach Redis at ${where}: ${describe(error)}`),
      );
      client.on('close', () => {
        if (subscribed) markDown(`lost connection to Redis at ${where}`);
        else if (detail === 'not started') markDown(`cannot reach Redis at ${where}`);
      });
      client.on('ready', () => {
        client.subscribe(channel).then(
          () => {
            if (closed || client.status !== 'ready') return;
            subscribed = true;
            detail = '';
            if (everSubscribed && outageReported) observer?.onReconnect?.();
            else observer?.onUp?.();
            everSubscribed = true;
            outageReported = false;
            first.resolve();
          },
          // The connection dropped again before Redis answered; the next 'ready' tries again.
          (error: unknown) => markDown(`cannot subscribe on Redis at ${where}: ${describe(error)}`),
        );
      });
      client.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
        if (!isUtf8(message)) {
          observer?.onDropped?.('not UTF-8');
          return;
        }
        onMessage(message.toString('utf8'));
      });
      // Failures also arrive as 'error' events, which name the cause better than this rejection.
      client.connect().catch((error: unknown) => {
        if (detail === 'not started')
          markDown(`cannot reach Redis at ${where}: ${describe(error)}`);
        else if (failFast) markDown(detail);
      });
      if (!failFast) return;
      try {
        await firstSubscription;
      } catch (error) {
        closed = true;
        client.disconnect();
        throw error;
      }
    },
    async publish(payload) {
      if (!publisher) {
        publisher = connection('publisher');
        // Failures reach the caller of publish(); ioredis would otherwise print them itself.
        publisher.on('error', () => undefined);
      }
      try {
        if (publisher.status === 'wait') await publisher.connect();
        await publisher.publish(channel, payload);
      } catch (error) {
        throw new SidecastError(
          'BUS_UNAVAILABLE',
          `cannot publish to Redis at ${where}: ${describe(error)}`,
          { status: 503, cause: error },
        );
      }
    },
    status: () => (subscribed ? { ready: true } : { ready: false, detail }),
    async close() {
      closed = true;
      subscribed = false;
      detail = 'closed';
      await Promise.all(
        [subscriber, publisher].map(async (client) => {
          if (!client) return;
          if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
          else client.disconnect();
        }),
      );
    },
  };
}
