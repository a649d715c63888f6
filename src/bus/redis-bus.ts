import { isUtf8 } from 'node:buffer';
import { Redis } from 'ioredis';
import { SidecastError } from '../errors.js';
import { redactUrl } from '../log.js';
import type { Bus, BusObserver, ControlChannel } from './bus.js';
import type { BusDriver } from './driver.js';
import { watchPings, type PingWatch } from './ping-watch.js';
import { publishFailed } from './publish.js';
import { errorText, retryDelay } from './redis-shared.js';

export interface RedisBusOptions {
  readonly url: string;
  readonly channel: string;
  /** The pub/sub channel of control messages (see ControlChannel). */
  readonly controlChannel: string;
  readonly observer?: BusObserver;
  /** How often the subscribed connection is sent a PING. Default 1 s. */
  readonly healthIntervalMs?: number;
  /** How long a PING may go unanswered before the bus counts as not ready. Default 3 s. */
  readonly hangAfterMs?: number;
}

const HEALTH_INTERVAL_MS = 1000;
const HANG_AFTER_MS = 3000;
/** How long close() waits for Redis to acknowledge QUIT before dropping the connection. */
const QUIT_TIMEOUT_MS = 1000;

/**
 * Redis pub/sub. One subscriber connection per process; ioredis reconnects with backoff, and this
 * driver subscribes again each time the connection is ready. The bus counts as ready only once
 * Redis has confirmed the subscription, so /readyz never claims events are flowing before they
 * can. Each outage is reported once, however many reconnection attempts fail meanwhile.
 * Publishing uses a second connection, opened on first use, because a subscribed connection
 * cannot publish.
 *
 * A Redis that stops answering (stopped, swapping, stuck) keeps its connections open, so no
 * error comes. The subscribed connection is therefore sent a PING every second (Redis answers
 * PING in subscribe mode); one unanswered for 3 s makes the bus not ready, and its answer makes
 * it ready again. The connection is kept meanwhile: what was published during the hang waits in
 * Redis's output buffer for this subscriber, and a reconnection would lose it. Should the
 * connection itself be dead, TCP eventually says so and ioredis reconnects as after any loss.
 */
export function createRedisBus(options: RedisBusOptions): Bus {
  const events = createPubSubChannel(options);
  const control = redisControlChannel(options.url, options.controlChannel);
  return {
    ...events,
    control: control.channel,
    async close() {
      await Promise.all([events.close(), control.close()]);
    },
  };
}

/**
 * The control channel of the Redis buses: a pub/sub channel on a subscriber connection of its
 * own, opened only when the server starts reading it. Its outages are not reported: the events'
 * connection to the same Redis reports them. Subscribed again after one, it says messages may
 * have been missed.
 */
export function redisControlChannel(
  url: string,
  channel: string,
): { readonly channel: ControlChannel; close(): Promise<void> } {
  let missed: (() => void) | undefined;
  const pubSub = createPubSubChannel({ url, channel, observer: { onReconnect: () => missed?.() } });
  return {
    channel: {
      describe: pubSub.describe,
      start: (onMessage, onMissed) => {
        missed = onMissed;
        return pubSub.start(onMessage);
      },
      publish: pubSub.publish,
    },
    close: pubSub.close,
  };
}

type PubSubChannel = Omit<Bus, 'control' | 'history'>;

function createPubSubChannel(options: Omit<RedisBusOptions, 'controlChannel'>): PubSubChannel {
  const { url, channel, observer } = options;
  const healthIntervalMs = options.healthIntervalMs ?? HEALTH_INTERVAL_MS;
  const hangAfterMs = options.hangAfterMs ?? HANG_AFTER_MS;
  const where = redactUrl(url);
  const description = `Redis at ${where}, channel "${channel}"`;
  let subscriber: Redis | undefined;
  let publisher: Redis | undefined;
  let subscribed = false;
  let everSubscribed = false;
  let outageReported = false;
  let closed = false;
  let detail = 'not started';
  /** PINGs the subscribed connection: subscribed, but no answer for hangAfterMs, is a hang. */
  let pings: PingWatch | undefined;

  const silence = (): string =>
    `Redis at ${where} did not answer for ${Math.floor((pings?.silentMs() ?? 0) / 1000)} s`;

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
    describe: () => description,
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
        // A stall already reported the outage: losing the connection after it is the same one.
        const wasUp = subscribed && !pings?.stalled;
        subscribed = false;
        pings?.reset();
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
        markDown(`cannot reach Redis at ${where}: ${errorText(error)}`),
      );
      client.on('close', () => {
        if (subscribed) markDown(`lost connection to Redis at ${where}`);
        else if (detail === 'not started') markDown(`cannot reach Redis at ${where}`);
      });
      pings = watchPings({
        client,
        intervalMs: healthIntervalMs,
        hangAfterMs,
        active: () => !closed && subscribed,
        onStall: () => {
          outageReported = true;
          observer?.onDown?.(silence());
        },
        onAnswer: () => {
          outageReported = false;
          observer?.onResumed?.();
        },
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
          (error: unknown) =>
            markDown(`cannot subscribe on Redis at ${where}: ${errorText(error)}`),
        );
      });
      client.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
        if (!isUtf8(message)) {
          observer?.onDropped?.('not_utf8', 'not UTF-8');
          return;
        }
        onMessage(message.toString('utf8'));
      });
      // Failures also arrive as 'error' events, which name the cause better than this rejection.
      client.connect().catch((error: unknown) => {
        if (detail === 'not started')
          markDown(`cannot reach Redis at ${where}: ${errorText(error)}`);
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
        throw publishFailed(description, errorText(error), error);
      }
    },
    status() {
      if (!subscribed) return { ready: false, detail };
      return pings?.stalled ? { ready: false, detail: silence() } : { ready: true };
    },
    async close() {
      closed = true;
      subscribed = false;
      detail = 'closed';
      pings?.stop();
      await Promise.all(
        [subscriber, publisher].map(async (client) => {
          if (!client) return;
          if (client.status === 'ready') {
            // A Redis that stopped answering would never acknowledge QUIT.
            let timer: NodeJS.Timeout | undefined;
            const timeout = new Promise(
              (resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)),
            );
            await Promise.race([client.quit().catch(() => undefined), timeout]);
            clearTimeout(timer);
          }
          client.disconnect();
        }),
      );
    },
  };
}

/** Redis pub/sub: every process subscribes to --channel on --redis. */
export const redisDriver = {
  kind: 'redis',
  summary: 'shared by every instance',
  local: false,
  options: ['redis', 'channel', 'control-channel'],
  create: (options: RedisDriverOptions, observer?: BusObserver) =>
    createRedisBus({
      url: options.redis,
      channel: options.channel,
      controlChannel: options.controlChannel,
      ...(observer ? { observer } : {}),
    }),
} as const satisfies BusDriver<RedisDriverOptions>;

export interface RedisDriverOptions {
  readonly redis: string;
  readonly channel: string;
  readonly controlChannel: string;
}
