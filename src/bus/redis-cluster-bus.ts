import { isUtf8 } from 'node:buffer';
import { Cluster } from 'ioredis';
import { SidecastError } from '../errors.js';
import { inspectEvent } from '../event.js';
import { redactUrl } from '../log.js';
import type { Bus, BusHandler, BusObserver, ControlChannel } from './bus.js';
import type { BusDriver } from './driver.js';
import { publishFailed } from './publish.js';
import { errorText, retryDelay } from './redis-shared.js';

export interface RedisClusterBusOptions {
  /** Seed nodes: any nodes of the cluster; the client learns the others from them. */
  readonly nodes: readonly string[];
  /** Events travel on the shard channel `<channel>:<content_type_id>`. */
  readonly channel: string;
  /** The shard channel of control messages. */
  readonly controlChannel: string;
  readonly observer?: BusObserver;
}

/**
 * The shard channel of a content type. No hash tag (`{…}`): each channel hashes to a slot of its
 * own, so the content types spread over every master of the cluster instead of all landing on one.
 */
export function shardChannel(channel: string, contentTypeId: number): string {
  return `${channel}:${contentTypeId}`;
}

/**
 * Redis Cluster sharded pub/sub (SPUBLISH, SSUBSCRIBE), routed by interest: each event is
 * published on its content type's shard channel, which only the master owning that channel's
 * slot (and its replicas) carries, and a process subscribes to exactly the content types its
 * live connections may see (setInterest). The client keeps one subscriber connection per master
 * it needs; when a master fails and its replica is promoted, the client learns the new slot map
 * and subscribes again on the new master. No history: an event published on a shard while it has
 * no master is refused to its publisher, not kept.
 */
export function createRedisClusterBus(options: RedisClusterBusOptions): Bus {
  const { channel, controlChannel, observer } = options;
  const where = `Redis Cluster at ${options.nodes.map(redactUrl).join(',')}`;
  const description = `${where}, shard channels "${channel}:<content_type_id>"`;
  let cluster: Cluster | undefined;
  let handler: BusHandler | undefined;
  let onControl: ((message: string) => void) | undefined;
  let onControlMissed: (() => void) | undefined;
  let interest: ReadonlySet<number> = new Set();
  const subscribed = new Set<number>();
  let controlSubscribed = false;
  let started = false;
  let startingFast = false;
  let ready = false;
  let everReady = false;
  let outageReported = false;
  let closed = false;
  let detail = 'not started';
  /** The control shard channel's slot, asked of the cluster once subscribed. */
  let controlSlot: number | undefined;
  /** The master ("host:port") that served the control channel when last looked at. */
  let controlMaster: string | undefined;
  /** Whether control messages may have been lost since the last time that was reported. */
  let controlLost = false;

  function controlMasterNow(): string | undefined {
    return controlSlot === undefined ? undefined : cluster?.slots[controlSlot]?.[0];
  }

  /**
   * Tells the control channel's listener, once, that messages may have been lost: after an
   * outage of the whole cluster, and after the control channel's own master went away or was
   * replaced (a failover leaves the cluster ready, but what that master carried meanwhile is gone).
   */
  function reportControlLoss(): void {
    const master = controlMasterNow();
    if (master !== undefined && controlMaster !== undefined && master !== controlMaster)
      controlLost = true;
    if (master !== undefined) controlMaster = master;
    if (!controlLost) return;
    controlLost = false;
    onControlMissed?.();
  }

  function markDown(why: string): void {
    // With failFast, start-up reports the first failure itself, as its one line.
    if (closed || startingFast) return;
    detail = why;
    controlLost = true;
    const wasUp = ready;
    ready = false;
    if (wasUp || !outageReported) {
      outageReported = true;
      observer?.onDown?.(why);
    }
  }

  function client(): Cluster {
    if (cluster) return cluster;
    const made = new Cluster([...options.nodes], {
      lazyConnect: true,
      shardedSubscribers: true,
      clusterRetryStrategy: retryDelay,
      enableOfflineQueue: true,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      redisOptions: {
        connectionName: 'sidecast-cluster',
        connectTimeout: 5000,
        maxRetriesPerRequest: 2,
      },
    });
    cluster = made;
    // One node lost (a master failing over to its replica) leaves the cluster ready: only a
    // cluster that cannot serve at all is an outage.
    made.on('error', (error: unknown) => {
      if (started && made.status !== 'ready')
        markDown(`cannot reach ${where}: ${errorText(error)}`);
    });
    made.on('close', () => {
      if (made.status !== 'ready') markDown(`lost connection to ${where}`);
    });
    made.on('end', () => markDown(`lost connection to ${where}`));
    made.on('ready', () => {
      if (closed || ready || !started) return;
      ready = true;
      detail = '';
      if (everReady && outageReported) {
        observer?.onReconnect?.();
        // The control shard channel shares these connections: its messages were lost too.
        reportControlLoss();
      } else observer?.onUp?.();
      everReady = true;
      outageReported = false;
    });
    // A node's connection ended (the pool's or a shard subscriber's): if it served the control
    // channel, messages may be lost until the channel is subscribed again.
    made.on('-node', (_node: unknown, key: unknown) => {
      if (key === controlMaster) controlLost = true;
    });
    // The shard subscribers were remade after a change of the slot map, and subscribed again.
    made.on('subscribersReady', () => {
      if (!closed) reportControlLoss();
    });
    made.on('smessageBuffer', (from: Buffer, message: Buffer) => {
      const name = from.toString('utf8');
      if (!isUtf8(message)) {
        observer?.onDropped?.('not_utf8', 'not UTF-8');
        return;
      }
      const text = message.toString('utf8');
      if (name === controlChannel) onControl?.(text);
      else handler?.(text);
    });
    return made;
  }

  /** One SSUBSCRIBE or SUNSUBSCRIBE per channel: each lives on the master of its own slot. */
  function reconcile(): void {
    if (!started || closed) return;
    const redis = client();
    for (const id of [...subscribed]) {
      if (interest.has(id)) continue;
      subscribed.delete(id);
      redis.sunsubscribe(shardChannel(channel, id)).catch(() => undefined);
    }
    for (const id of interest) {
      if (subscribed.has(id)) continue;
      subscribed.add(id);
      redis.ssubscribe(shardChannel(channel, id)).catch(() => {
        // Not subscribed after all: the next change of interest, or the retry, tries again.
        subscribed.delete(id);
        setTimeout(reconcile, 1000).unref();
      });
    }
  }

  async function connect(failFast: boolean): Promise<void> {
    const redis = client();
    if (redis.status !== 'wait') return;
    try {
      await redis.connect();
    } catch (error) {
      if (failFast) {
        closed = true;
        redis.disconnect();
        throw new SidecastError('BUS_UNAVAILABLE', `cannot reach ${where}: ${errorText(error)}`, {
          cause: error,
        });
      }
      markDown(`cannot reach ${where}: ${errorText(error)}`);
    }
  }

  async function publishOn(name: string, payload: string, what: string): Promise<void> {
    if (closed) throw publishFailed(what, 'the bus is closed');
    const redis = client();
    try {
      if (redis.status === 'wait') await redis.connect();
      await redis.spublish(name, payload);
    } catch (error) {
      throw publishFailed(what, errorText(error), error);
    }
  }

  const control: ControlChannel = {
    describe: () => `${where}, shard channel "${controlChannel}"`,
    async start(onMessage, onMissed) {
      onControl = onMessage;
      onControlMissed = onMissed;
      if (controlSubscribed) return;
      controlSubscribed = true;
      const subscribe = (): void => {
        const redis = client();
        redis
          .ssubscribe(controlChannel)
          .then(async () => {
            controlSlot = await redis.cluster('KEYSLOT', controlChannel);
            controlMaster = controlMasterNow();
          })
          .catch(() => {
            if (!closed) setTimeout(subscribe, 1000).unref();
          });
      };
      subscribe();
    },
    publish: (message) => publishOn(controlChannel, message, control.describe()),
  };

  return {
    kind: 'redis-cluster',
    describe: () => description,
    control,
    async start(onMessage, startOptions = {}) {
      handler = onMessage;
      started = true;
      detail = `connecting to ${where}`;
      const failFast = startOptions.failFast ?? false;
      if (failFast) {
        startingFast = true;
        try {
          await connect(true);
        } finally {
          startingFast = false;
        }
      } else void connect(false);
      reconcile();
    },
    setInterest(contentTypeIds) {
      interest = new Set(contentTypeIds);
      reconcile();
    },
    async publish(payload) {
      const check = inspectEvent(payload);
      if (!check.ok) throw new SidecastError('EVENT_INVALID', `invalid event: ${check.reason}`);
      await publishOn(shardChannel(channel, check.contentTypeId), payload, description);
    },
    status: () =>
      ready && cluster?.status === 'ready' ? { ready: true } : { ready: false, detail },
    async close() {
      closed = true;
      ready = false;
      detail = 'closed';
      handler = undefined;
      onControl = undefined;
      if (!cluster) return;
      const redis = cluster;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 1000)));
      if (redis.status === 'ready')
        await Promise.race([redis.quit().catch(() => undefined), timeout]);
      clearTimeout(timer);
      redis.disconnect();
    },
  };
}

export interface RedisClusterDriverOptions {
  readonly redisCluster: string;
  readonly channel: string;
  readonly controlChannel: string;
}

/** Redis Cluster: each process subscribes to the shard channels of the content types it needs. */
export const redisClusterDriver = {
  kind: 'redis-cluster',
  summary:
    'a Redis Cluster, sharded pub/sub, each instance receiving only the content types its clients may see',
  local: false,
  options: ['redis-cluster', 'channel', 'control-channel'],
  create: (options: RedisClusterDriverOptions, observer?: BusObserver) =>
    createRedisClusterBus({
      nodes: options.redisCluster
        .split(',')
        .map((node) => node.trim())
        .filter((node) => node !== ''),
      channel: options.channel,
      controlChannel: options.controlChannel,
      ...(observer ? { observer } : {}),
    }),
} as const satisfies BusDriver<RedisClusterDriverOptions>;
