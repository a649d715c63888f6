/**
 * Two sidecast instances on brokers of several nodes the test starts: a NATS cluster of three
 * servers (routes, JetStream on) and a Redis Cluster of three masters with a replica each. Each
 * instance is pointed at a different node. Every event reaches every allowed client once; an
 * instance with no connection allowed to see a content type receives none of its events from the
 * broker (its sidecast_events_received_total does not move); and when a node is killed (the NATS
 * server an instance is connected to, the Redis master serving a content type's shard channel)
 * clients stay connected and delivery resumes, with JetStream's history losing nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { shardChannel } from '../../src/bus/redis-cluster-bus.js';
import {
  createNatsCluster,
  createRedisCluster,
  type NatsCluster,
  type RedisClusterHandle,
} from '../support/brokers.js';
import { liveClient, type TestClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const USERS = {
  // Content types 1 and 2 on both instances; 3 only on the second.
  'token-alice': principal('alice', [1, 2]),
  'token-carol': principal('carol', [3]),
};

interface Setup {
  readonly name: string;
  /** Starts the broker; returns the flags of instance 0 and 1, and a way to break one node. */
  start(): Promise<{
    flags: [string[], string[]];
    /** Kills the node instance 0 depends on for content type 1; resolves once it is dead. */
    kill(): Promise<void>;
    /** Waits until the broker serves again (a node restarted, a replica promoted). */
    recover(): Promise<void>;
    /** Whether events published while the node was away are delivered later. */
    history: boolean;
    stop(): Promise<void>;
  }>;
}

function natsSetup(jetstream: boolean): Setup {
  return {
    name: jetstream ? 'nats-jetstream' : 'nats',
    async start() {
      const cluster: NatsCluster = await createNatsCluster(3);
      const common = jetstream
        ? ['--bus', 'nats-jetstream', '--nats-stream-replicas', '3']
        : ['--bus', 'nats', '--interest-hold', '1'];
      return {
        flags: [
          [...common, '--nats', cluster.nodes[0]!.url],
          [...common, '--nats', cluster.nodes[1]!.url],
        ],
        kill: () => cluster.nodes[0]!.kill(),
        async recover() {
          await cluster.nodes[0]!.start();
        },
        history: jetstream,
        stop: () => cluster.stop(),
      };
    },
  };
}

const redisClusterSetup: Setup = {
  name: 'redis-cluster',
  async start() {
    const cluster: RedisClusterHandle = await createRedisCluster(3);
    const common = ['--bus', 'redis-cluster', '--interest-hold', '1'];
    const channel = shardChannel('events', 1);
    return {
      flags: [
        [...common, '--redis-cluster', cluster.nodes[0]!.url],
        [...common, '--redis-cluster', cluster.nodes[1]!.url],
      ],
      kill: async () => (await cluster.masterOf(channel)).kill(),
      async recover() {
        await waitFor(
          async () => (await cluster.masterOf(channel).catch(() => undefined))?.running === true,
          30_000,
          'a replica to be promoted',
          200,
        );
        await cluster.waitHealthy();
      },
      history: false,
      stop: () => cluster.stop(),
    };
  },
};

for (const setup of [natsSetup(false), natsSetup(true), redisClusterSetup]) {
  describe(`two instances on a ${setup.name} cluster`, { timeout: 180_000 }, () => {
    let broker: Awaited<ReturnType<Setup['start']>>;
    const instances: Sidecast[] = [];
    /** alice on instance 0, alice and carol on instance 1. */
    let clients: { alice0: TestClient; alice1: TestClient; carol1: TestClient };
    let sent = 0;

    const publish = async (instance: number, contentTypeId: number, extra = {}) => {
      const payload = event(contentTypeId, { n: ++sent, ...extra });
      await instances[instance]!.bus.publish(payload);
      return payload;
    };
    const received = (client: TestClient) => client.messages.map((text) => JSON.parse(text));
    const numbers = (client: TestClient, contentTypeId: number) =>
      received(client)
        .filter((message) => message.content_type_id === contentTypeId && !message.marker)
        .map((message) => message.n as number);

    /** Publishes markers until the client has one: its instance's subscription is in place. */
    async function reaches(client: TestClient, contentTypeId: number): Promise<void> {
      const mark = Math.random();
      await waitFor(
        async () => {
          if (received(client).some((message) => message.marker === mark)) return true;
          await publish(1, contentTypeId, { marker: mark }).catch(() => undefined);
          return false;
        },
        30_000,
        `content type ${contentTypeId} to reach the client`,
        200,
      );
    }

    before(async () => {
      broker = await setup.start();
      for (const flags of broker.flags) {
        instances.push(await startTestServer(flags, { authenticator: tableAuthenticator(USERS) }));
      }
      clients = {
        alice0: await liveClient(instances[0]!, 'token-alice'),
        alice1: await liveClient(instances[1]!, 'token-alice'),
        carol1: await liveClient(instances[1]!, 'token-carol'),
      };
      await reaches(clients.alice0, 1);
      await reaches(clients.alice0, 2);
      await reaches(clients.alice1, 2);
      await reaches(clients.carol1, 3);
    });

    after(async () => {
      for (const client of Object.values(clients ?? {})) client.ws.terminate();
      await Promise.all(instances.map((instance) => instance.close()));
      await broker?.stop();
    });

    it('delivers every event once to every allowed client, whichever instance publishes', async () => {
      const first = sent;
      /** The numbers of the events of content types 1 and 3, by the instance that published. */
      const published = { 1: [[], []] as number[][], 3: [[], []] as number[][] };
      for (let i = 0; i < 30; i++) {
        const type = [1, 2, 3][i % 3]!;
        const payload = JSON.parse(await publish(i % 2, type));
        if (type === 1 || type === 3) published[type][i % 2]!.push(payload.n);
      }
      const after = (list: number[]) => list.filter((n) => n > first);
      await waitFor(
        () =>
          after(numbers(clients.carol1, 3)).length >= 10 &&
          after(numbers(clients.alice0, 1)).length >= 10 &&
          after(numbers(clients.alice1, 1)).length >= 10,
        10_000,
        'every event at every client',
      );
      /**
       * Each event once, and each publisher's events in the order it published them. Between two
       * publishers on different nodes there is no order to keep: an event published on the
       * client's own node may overtake one still crossing the cluster from another node.
       */
      const assertDelivered = (got: number[], [from0, from1]: number[][]) => {
        const byNumber = (a: number, b: number) => a - b;
        assert.deepEqual([...got].sort(byNumber), [...from0!, ...from1!].sort(byNumber));
        for (const from of [from0!, from1!])
          assert.deepEqual(
            got.filter((n) => from.includes(n)),
            from,
          );
      };
      for (const client of [clients.alice0, clients.alice1]) {
        assertDelivered(after(numbers(client, 1)), published[1]);
        assert.equal(after(numbers(client, 2)).length, 10);
        assert.deepEqual(after(numbers(client, 3)), []);
      }
      assertDelivered(after(numbers(clients.carol1, 3)), published[3]);
      assert.deepEqual(after(numbers(clients.carol1, 1)), []);
    });

    if (setup.name !== 'nats-jetstream') {
      // nats-jetstream reads the whole stream on every instance (see nats-jetstream-bus.ts).
      it('sends an instance none of the events of a content type none of its clients may see', async () => {
        const before0 = await metric(instances[0]!.port, 'sidecast_events_received_total');
        const before1 = await metric(instances[1]!.port, 'sidecast_events_received_total');
        for (let i = 0; i < 20; i++) await publish(i % 2, 3);
        // Then one that instance 0 does receive, published after them: once it has arrived,
        // any of the twenty would have too.
        await publish(1, 1);
        await waitFor(
          async () =>
            (await metric(instances[1]!.port, 'sidecast_events_received_total')) >= before1 + 21 &&
            (await metric(instances[0]!.port, 'sidecast_events_received_total')) >= before0 + 1,
          10_000,
          'the events to arrive',
        );
        await new Promise((wake) => setTimeout(wake, 300));
        assert.equal(
          await metric(instances[0]!.port, 'sidecast_events_received_total'),
          before0 + 1,
        );
        assert.equal(
          await metric(instances[1]!.port, 'sidecast_events_received_total'),
          before1 + 21,
        );
      });
    }

    it('keeps clients connected through the loss of a node, and delivers again', async () => {
      await broker.kill();
      // Published while the node is away, from the instance on another node. A publish may be
      // refused while the cluster moves what the node led (a JetStream stream's leader, a
      // shard): the publisher sends that event again, as publishEvents' callers do.
      const during: number[] = [];
      for (let i = 0; i < 5; i++) {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const payload = await publish(1, 1).catch(() => undefined);
          if (payload) {
            during.push(JSON.parse(payload).n);
            break;
          }
          if (Date.now() > deadline) break;
          await new Promise((wake) => setTimeout(wake, 200));
        }
        await new Promise((wake) => setTimeout(wake, 100));
      }
      await broker.recover();
      await reaches(clients.alice0, 1);
      const last = JSON.parse(await publish(1, 1)).n as number;
      await waitFor(() => numbers(clients.alice0, 1).includes(last), 10_000, 'the event after');
      for (const client of Object.values(clients))
        assert.equal(client.ws.readyState, client.ws.OPEN);
      if (broker.history) {
        // Nothing lost: everything published while instance 0's node was away arrived, in order.
        assert.equal(during.length, 5);
        const got = numbers(clients.alice0, 1).filter((n) => during.includes(n));
        assert.deepEqual(got, during);
      }
      // And never twice.
      const all = numbers(clients.alice0, 1);
      assert.equal(new Set(all).size, all.length);
    });

    if (setup.name !== 'nats-jetstream') {
      it('stops receiving a content type once its last client has been gone for the hold', async () => {
        clients.carol1.ws.close();
        await waitFor(() => instances[1]!.server.liveConnectionCount === 1, 5000, 'carol to leave');
        // --interest-hold 1, and a margin for the unsubscription to reach the broker.
        await new Promise((wake) => setTimeout(wake, 2500));
        const before = await metric(instances[1]!.port, 'sidecast_events_received_total');
        for (let i = 0; i < 10; i++) await publish(0, 3);
        await publish(0, 2);
        await waitFor(
          async () =>
            (await metric(instances[1]!.port, 'sidecast_events_received_total')) >= before + 1,
          10_000,
          'the event of content type 2',
        );
        await new Promise((wake) => setTimeout(wake, 300));
        assert.equal(
          await metric(instances[1]!.port, 'sidecast_events_received_total'),
          before + 1,
        );
      });
    }
  });
}
