/**
 * One contract, run against every bus driver on real brokers: a bus of its own for each driver
 * (a redis-server, a nats-server with JetStream, a Redis Cluster of three masters with replicas),
 * so that breaking it touches no other test. The same cases for each: delivery in order once,
 * bytes that are not UTF-8 dropped and counted while the events around them arrive, publishing to
 * a bus that is down refused with BUS_UNAVAILABLE, and delivery resuming once it is back, after a
 * broker killed and after one that stopped answering (SIGSTOP; on the Redis Cluster, the master
 * serving a content type, which its replica replaces while clients stay connected). Buses
 * with history also replay what came after a position; buses that route by interest deliver only
 * the content types subscribed to. The memory bus has no broker to break or inject into: it runs
 * the delivery case only.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis, Cluster } from 'ioredis';
import { connect } from 'nats';
import type { Bus, BusObserver, StreamPosition } from '../../src/bus/bus.js';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { createNatsBus } from '../../src/bus/nats-bus.js';
import { createNatsJetStreamBus } from '../../src/bus/nats-jetstream-bus.js';
import { createRedisBus } from '../../src/bus/redis-bus.js';
import { createRedisClusterBus, shardChannel } from '../../src/bus/redis-cluster-bus.js';
import { createRedisStreamsBus } from '../../src/bus/redis-streams-bus.js';
import { isSidecastError } from '../../src/errors.js';
import {
  createRedisCluster,
  natsAnswers,
  type RedisClusterHandle,
  type RedisClusterNode,
} from '../support/brokers.js';
import { spawnTracked, stopChild } from '../support/children.js';
import { createRedisServer, type RedisServer } from '../support/faults.js';
import { freePort } from '../support/ports.js';
import { event } from '../support/server.js';
import { waitFor } from '../support/wait.js';

interface Received {
  readonly payload: string;
  readonly position: StreamPosition | undefined;
}

/** One driver's bus on a broker of the test's own, and what the cases may do to that broker. */
interface Subject {
  /** A new bus on the broker; several may be open at once (one reads, one publishes). */
  bus(observer?: BusObserver): Bus;
  /** Puts these bytes on the broker where an event of this content type travels. */
  inject?(contentTypeId: number, bytes: Buffer): Promise<void>;
  /** Takes the broker (or, for a cluster, the node serving content type 1) away, then back. */
  breakBroker?(): Promise<void>;
  repairBroker?(): Promise<void>;
  /** Makes the broker (or the node serving content type 1) stop answering, then answer again. */
  hangBroker?(): Promise<void>;
  unhangBroker?(): Promise<void>;
  stop(): Promise<void>;
}

interface DriverCase {
  readonly kind: string;
  readonly history: boolean;
  readonly routed: boolean;
  /** A broker of several nodes: the outage is one node killed, which the bus rides out. */
  readonly survivesNodeLoss?: boolean;
  /**
   * A hung broker costs the subscription (NATS drops a stale connection, a hung cluster master
   * is failed over), so control messages sent meanwhile are lost and must be reported. One
   * Redis keeps the connection through a hang and delivers what was published once it answers.
   */
  readonly hangLosesSubscription?: boolean;
  setup(): Promise<Subject>;
}

const NOT_UTF8 = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);

function redisSubject(kind: 'redis' | 'redis-streams'): () => Promise<Subject> {
  return async () => {
    const server: RedisServer = await createRedisServer();
    await server.start();
    return {
      bus: (observer) =>
        kind === 'redis'
          ? createRedisBus({
              url: server.url,
              channel: 'events',
              controlChannel: 'control',
              healthIntervalMs: 200,
              hangAfterMs: 1000,
              ...(observer ? { observer } : {}),
            })
          : createRedisStreamsBus({
              url: server.url,
              stream: 'events',
              controlChannel: 'control',
              historyMaxEntries: 1000,
              historyMaxAgeSeconds: 300,
              checkIntervalMs: 200,
              hangAfterMs: 1000,
              ...(observer ? { observer } : {}),
            }),
      async inject(_contentTypeId, bytes) {
        const redis = new Redis(server.url);
        try {
          if (kind === 'redis') await redis.publish('events', bytes);
          else await redis.xadd('events', '*', 'payload', bytes);
        } finally {
          redis.disconnect();
        }
      },
      breakBroker: () => server.stop(),
      repairBroker: () => server.start(),
      hangBroker: async () => server.pause(),
      unhangBroker: async () => server.resume(),
      stop: () => server.stop(),
    };
  };
}

/** One nats-server with JetStream on a free port, its store in a folder of its own. */
async function natsServer() {
  const port = await freePort();
  const folder = mkdtempSync(join(tmpdir(), 'sidecast-nats-one-'));
  const url = `nats://127.0.0.1:${port}`;
  let child: ReturnType<typeof spawnTracked> | undefined;
  const server = {
    url,
    async start() {
      child = spawnTracked(
        'nats-server',
        ['-a', '127.0.0.1', '-p', String(port), '--js', '--sd', folder],
        {
          stdio: 'ignore',
        },
      );
      await waitFor(() => natsAnswers(url), 10_000, 'nats-server', 50);
    },
    async stop() {
      const running = child;
      child = undefined;
      if (running) await stopChild(running);
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async remove() {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

function natsSubject(jetstream: boolean): () => Promise<Subject> {
  return async () => {
    const server = await natsServer();
    return {
      bus: (observer) =>
        jetstream
          ? createNatsJetStreamBus({
              servers: [server.url],
              subjectPrefix: 'sidecast',
              stream: 'SIDECAST',
              replicas: 1,
              historyMaxEntries: 1000,
              historyMaxAgeSeconds: 300,
              checkIntervalMs: 200,
              ...(observer ? { observer } : {}),
            })
          : createNatsBus({
              servers: [server.url],
              subjectPrefix: 'sidecast',
              ...(observer ? { observer } : {}),
            }),
      async inject(contentTypeId, bytes) {
        const connection = await connect({ servers: server.url });
        try {
          const subject = `sidecast.events.${contentTypeId}`;
          if (jetstream) await connection.jetstream().publish(subject, bytes);
          else connection.publish(subject, bytes);
          await connection.flush();
        } finally {
          await connection.close();
        }
      },
      breakBroker: () => server.stop(),
      repairBroker: () => server.start(),
      hangBroker: async () => server.pause(),
      unhangBroker: async () => server.resume(),
      stop: () => server.remove(),
    };
  };
}

async function redisClusterSubject(): Promise<Subject> {
  const cluster: RedisClusterHandle = await createRedisCluster(3);
  let hung: RedisClusterNode | undefined;
  return {
    bus: (observer) =>
      createRedisClusterBus({
        nodes: cluster.nodes.slice(0, 2).map((node) => node.url),
        channel: 'events',
        controlChannel: 'control',
        ...(observer ? { observer } : {}),
      }),
    async inject(contentTypeId, bytes) {
      const redis = new Cluster([cluster.nodes[0]!.url]);
      try {
        await redis.spublish(shardChannel('events', contentTypeId), bytes);
      } finally {
        redis.disconnect();
      }
    },
    // The master serving content type 1's channel: its replica takes over. It serves the
    // control channel too (the two hash to slots of one master), whose loss must be reported.
    async breakBroker() {
      const owner = await cluster.masterOf(shardChannel('events', 1));
      assert.equal(await cluster.masterOf('control'), owner, 'one master for both channels');
      await owner.kill();
    },
    async repairBroker() {
      await waitFor(
        async () =>
          (await cluster.masterOf(shardChannel('events', 1)).catch(() => undefined))?.running ===
          true,
        30_000,
        'a replica to be promoted',
        200,
      );
      await cluster.waitHealthy();
    },
    // A hung master is failed over like a dead one; it comes back as its successor's replica.
    async hangBroker() {
      hung = await cluster.masterOf(shardChannel('events', 1));
      hung.pause();
      await waitFor(
        async () => {
          const now = await cluster.masterOf(shardChannel('events', 1)).catch(() => undefined);
          return now !== undefined && now !== hung;
        },
        30_000,
        'a replica to take over from the hung master',
        200,
      );
    },
    async unhangBroker() {
      hung?.resume();
      await cluster.waitHealthy();
    },
    stop: () => cluster.stop(),
  };
}

const DRIVERS: readonly DriverCase[] = [
  {
    kind: 'memory',
    history: false,
    routed: false,
    setup: async () => {
      const bus = createMemoryBus();
      return { bus: () => bus, stop: () => bus.close() };
    },
  },
  { kind: 'redis', history: false, routed: false, setup: redisSubject('redis') },
  { kind: 'redis-streams', history: true, routed: false, setup: redisSubject('redis-streams') },
  {
    kind: 'nats',
    history: false,
    routed: true,
    hangLosesSubscription: true,
    setup: natsSubject(false),
  },
  {
    kind: 'nats-jetstream',
    history: true,
    routed: false,
    hangLosesSubscription: true,
    setup: natsSubject(true),
  },
  {
    kind: 'redis-cluster',
    history: false,
    routed: true,
    survivesNodeLoss: true,
    hangLosesSubscription: true,
    setup: redisClusterSubject,
  },
];

const CONTENT_TYPES = [1, 2, 3];

for (const driver of DRIVERS) {
  describe(`the ${driver.kind} bus`, { timeout: 120_000 }, () => {
    let subject: Subject;
    let reader: Bus;
    let publisher: Bus;
    const received: Received[] = [];
    const dropped: string[] = [];
    const downs: string[] = [];
    const controls: string[] = [];
    /** How often the reader's control channel said messages were lost. */
    let missed = 0;

    const payloads = () => received.map(({ payload }) => payload);

    /** Publishes until the reader has one: a subscription just made takes effect a little later. */
    async function settled(contentTypeId: number): Promise<void> {
      const marker = event(contentTypeId, { marker: Math.random() });
      await waitFor(
        async () => {
          if (payloads().includes(marker)) return true;
          await publisher.publish(marker).catch(() => undefined);
          return false;
        },
        15_000,
        `the ${driver.kind} bus to deliver again`,
        200,
      );
    }

    before(async () => {
      subject = await driver.setup();
      reader = subject.bus({
        onDown: (detail) => downs.push(detail),
        onDropped: (reason) => dropped.push(reason),
      });
      await reader.start((payload, position) => received.push({ payload, position }), {
        failFast: true,
      });
      reader.setInterest?.(new Set(CONTENT_TYPES));
      await reader.control.start(
        (message) => controls.push(message),
        () => missed++,
      );
      publisher = driver.kind === 'memory' ? reader : subject.bus();
      await settled(1);
    });

    after(async () => {
      await reader?.close();
      if (publisher !== reader) await publisher?.close();
      await subject?.stop();
    });

    it('delivers every event once, in the order published', async () => {
      received.length = 0;
      const sent = Array.from({ length: 60 }, (_, i) => event(CONTENT_TYPES[i % 3]!, { n: i }));
      for (const payload of sent) await publisher.publish(payload);
      await waitFor(
        () => received.length >= sent.length,
        10_000,
        () => `60 events, got ${received.length}`,
      );
      // Order is per content type on the routed buses (one subject or shard channel each).
      for (const id of CONTENT_TYPES) {
        const ofType = (list: readonly string[]) =>
          list.filter((payload) => JSON.parse(payload).content_type_id === id);
        assert.deepEqual(ofType(payloads()), ofType(sent));
      }
      if (!driver.routed) assert.deepEqual(payloads(), sent);
      assert.equal(received.length, sent.length);
      assert.equal(reader.status().ready, true);
    });

    if (driver.kind !== 'memory') {
      it('drops bytes that are not UTF-8, counted, and delivers the events around them', async () => {
        received.length = 0;
        dropped.length = 0;
        await publisher.publish(event(2, { n: 'before' }));
        await subject.inject!(2, NOT_UTF8);
        await publisher.publish(event(2, { n: 'after' }));
        await waitFor(() => received.length >= 2, 10_000, 'the events around the bad bytes');
        assert.deepEqual(payloads(), [event(2, { n: 'before' }), event(2, { n: 'after' })]);
        await waitFor(() => dropped.length === 1, 5000, 'the drop to be counted');
        assert.deepEqual(dropped, ['not_utf8']);
      });
    }

    if (driver.routed) {
      it('refuses to publish an event without a content type id, as EVENT_INVALID', async () => {
        await assert.rejects(publisher.publish('{"model":"thing"}'), (error: unknown) =>
          isSidecastError(error, 'EVENT_INVALID'),
        );
      });

      it('delivers only the content types it is interested in', async () => {
        reader.setInterest!(new Set([1]));
        received.length = 0;
        for (let i = 0; i < 10; i++) {
          await publisher.publish(event(2, { n: i }));
          await publisher.publish(event(1, { n: i }));
        }
        await waitFor(() => received.length >= 10, 10_000, 'the events of content type 1');
        // Content type 2's last event was published before type 1's last one, on the same
        // connection: had it been sent to the reader, it would have arrived by now.
        await new Promise((wake) => setTimeout(wake, 300));
        assert.deepEqual(
          payloads(),
          Array.from({ length: 10 }, (_, i) => event(1, { n: i })),
        );
        reader.setInterest!(new Set(CONTENT_TYPES));
        await settled(2);
      });
    }

    if (driver.history) {
      it('replays every event after a position, and nothing before it', async () => {
        received.length = 0;
        const sent = Array.from({ length: 10 }, (_, i) => event(3, { replay: i }));
        for (const payload of sent) await publisher.publish(payload);
        await waitFor(() => received.length >= 10, 10_000, 'the events to replay');
        const since = received[3]!.position!;
        const history = reader.history!;
        const result = await history.replay(since, history.latest().offset, 100);
        assert.equal(result.complete, true);
        assert.deepEqual(
          result.complete && result.entries.map((entry) => entry.payload),
          sent.slice(4),
        );
        const tooMany = await history.replay(since, history.latest().offset, 3);
        assert.deepEqual(tooMany, { complete: false, gap: 'too_many' });
        const other = await history.replay(
          { ...since, epoch: 'another' },
          history.latest().offset,
          100,
        );
        assert.deepEqual(other, { complete: false, gap: 'epoch' });
      });
    }

    if (driver.kind !== 'memory') {
      it('sees a broker that stopped answering, and delivers again once it answers', async () => {
        const missedBefore = missed;
        await subject.hangBroker!();
        if (!driver.survivesNodeLoss)
          await waitFor(() => !reader.status().ready, 15_000, 'the reader to see the hang');
        await subject.unhangBroker!();
        await waitFor(() => reader.status().ready, 30_000, 'the reader to be ready again');
        await settled(1);
        received.length = 0;
        await publisher.publish(event(1, { n: 'answering' }));
        await waitFor(() => received.length >= 1, 10_000, 'an event after the hang');
        assert.deepEqual(payloads(), [event(1, { n: 'answering' })]);
        if (driver.hangLosesSubscription)
          await waitFor(() => missed > missedBefore, 10_000, 'the hang to be reported as a loss');
      });

      it('delivers again once the broker is back after an outage', async () => {
        await subject.breakBroker!();
        if (!driver.survivesNodeLoss) {
          await waitFor(() => !reader.status().ready, 10_000, 'the reader to see the outage');
          assert.ok(downs.length >= 1);
          await assert.rejects(publisher.publish(event(1, { n: 'lost' })), (error: unknown) =>
            isSidecastError(error, 'BUS_UNAVAILABLE'),
          );
        }
        await subject.repairBroker!();
        await waitFor(() => reader.status().ready, 20_000, 'the reader to reconnect');
        await settled(1);
        received.length = 0;
        await publisher.publish(event(1, { n: 'back' }));
        await waitFor(() => received.length >= 1, 10_000, 'an event after the outage');
        assert.deepEqual(payloads(), [event(1, { n: 'back' })]);
        // Control messages sent during the outage are gone: the channel says so once it is back,
        // and carries messages again.
        const marker = `after the outage ${Math.random()}`;
        await waitFor(
          async () => {
            if (controls.includes(marker)) return true;
            await publisher.control.publish(marker).catch(() => undefined);
            return false;
          },
          15_000,
          'control messages after the outage',
          200,
        );
        assert.ok(missed >= 1, 'the lost control messages are reported');
      });
    }
  });
}
