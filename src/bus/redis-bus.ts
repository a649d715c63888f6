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
 * Redis pub/sub. One subscriber connection per process; ioredis reconnects and resubscribes on its
 * own, and this driver turns its events into status and observer calls. Publishing uses a second
 * connection, opened on first use, because a subscribed connection cannot publish.
 */
export function createRedisBus(options: RedisBusOptions): Bus {
  const { url, channel, observer } = options;
  const where = redactUrl(url);
  let subscriber: Redis | undefined;
  let publisher: Redis | undefined;
  let ready = false;
  let detail = 'not started';
  let everReady = false;

  function connection(role: string): Redis {
    return new Redis(url, {
      lazyConnect: true,
      connectionName: `sidecast-${role}`,
      retryStrategy: retryDelay,
      maxRetriesPerRequest: role === 'publisher' ? 1 : null,
      connectTimeout: 5000,
    });
  }

  return {
    kind: 'redis',
    async start(onMessage, startOptions = {}) {
      const client = connection('subscriber');
      subscriber = client;
      client.on('ready', () => {
        ready = true;
        detail = '';
        if (everReady) observer?.onReconnect?.();
        everReady = true;
        observer?.onUp?.();
      });
      client.on('error', (error: unknown) => {
        const wasReady = ready;
        ready = false;
        detail = `cannot reach Redis at ${where}: ${describe(error)}`;
        if (wasReady || !everReady) observer?.onDown?.(detail);
      });
      client.on('close', () => {
        if (ready) observer?.onDown?.(`lost connection to Redis at ${where}`);
        if (ready) detail = `lost connection to Redis at ${where}`;
        ready = false;
      });
      client.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
        if (!isUtf8(message)) {
          observer?.onDropped?.('not UTF-8');
          return;
        }
        onMessage(message.toString('utf8'));
      });
      try {
        await client.connect();
        await client.subscribe(channel);
      } catch (error) {
        if (startOptions.failFast) {
          client.disconnect();
          throw new SidecastError(
            'BUS_UNAVAILABLE',
            `cannot reach Redis at ${where}: ${describe(error)}`,
            { cause: error },
          );
        }
        // ioredis keeps retrying; the subscription is queued and sent once the connection is up.
        client.subscribe(channel).catch(() => undefined);
      }
    },
    async publish(payload) {
      publisher ??= connection('publisher');
      if (publisher.status === 'wait') await publisher.connect();
      try {
        await publisher.publish(channel, payload);
      } catch (error) {
        throw new SidecastError(
          'BUS_UNAVAILABLE',
          `cannot publish to Redis at ${where}: ${describe(error)}`,
          {
            status: 503,
            cause: error,
          },
        );
      }
    },
    status: () => (ready ? { ready: true } : { ready: false, detail }),
    async close() {
      ready = false;
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
