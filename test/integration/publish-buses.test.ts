/**
 * `sidecast publish` and POST /publish on the buses that route by content type (nats,
 * nats-jetstream on the shared NATS at 127.0.0.1:4222 under a prefix and stream of this run's
 * own; redis-cluster on a Redis Cluster the test starts): the event reaches the allowed client of
 * a running instance, and an event without a content type id is refused before it is sent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect } from 'nats';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { createLogger } from '../../src/log.js';
import { createRedisCluster, type RedisClusterHandle } from '../support/brokers.js';
import { runCli } from '../support/cli.js';
import { liveClient, type TestClient } from '../support/client.js';
import { httpRequest } from '../support/observe.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const RUN = `t${randomBytes(4).toString('hex')}`;
const KEY = `key-${randomBytes(8).toString('hex')}`;

interface Case {
  readonly kind: string;
  flags(): Promise<string[]>;
  stop(): Promise<void>;
}

let cluster: RedisClusterHandle | undefined;

const CASES: readonly Case[] = [
  {
    kind: 'nats',
    flags: async () => ['--bus', 'nats', '--nats-subject-prefix', `${RUN}-core`],
    stop: async () => undefined,
  },
  {
    kind: 'nats-jetstream',
    flags: async () => [
      '--bus',
      'nats-jetstream',
      '--nats-subject-prefix',
      `${RUN}-js`,
      '--nats-stream',
      `${RUN}-js`,
    ],
    async stop() {
      const connection = await connect({ servers: '127.0.0.1:4222' });
      const jsm = await connection.jetstreamManager();
      await jsm.streams.delete(`${RUN}-js`).catch(() => undefined);
      await connection.close();
    },
  },
  {
    kind: 'redis-cluster',
    async flags() {
      cluster = await createRedisCluster(3);
      return ['--bus', 'redis-cluster', '--redis-cluster', cluster.nodes[0]!.url];
    },
    stop: async () => cluster?.stop(),
  },
];

for (const testCase of CASES) {
  describe(`publishing to the ${testCase.kind} bus`, { timeout: 120_000 }, () => {
    let flags: string[];
    let app: Sidecast;
    let client: TestClient;

    before(async () => {
      flags = await testCase.flags();
      app = await startSidecast({
        options: { ...serveOptions(flags), publishKey: KEY },
        authenticator: tableAuthenticator({ 'token-books': principal('reader', [2]) }),
        logger: createLogger('silent'),
      });
      client = await liveClient(app, 'token-books');
      // The instance has subscribed once an event it publishes itself comes back.
      const mark = event(2, { marker: true });
      await waitFor(
        async () => {
          if (client.messages.includes(mark)) return true;
          await app.bus.publish(mark);
          return false;
        },
        10_000,
        'the subscription',
        200,
      );
    });

    after(async () => {
      client?.ws.terminate();
      await app?.close();
      await testCase.stop();
    });

    it('sidecast publish reaches the allowed client, and nothing else does', async () => {
      const before = client.messages.length;
      const book = event(2, { via: 'cli' });
      const result = await runCli(['publish', '-', ...flags], {
        input: `${event(3, { via: 'cli' })}\n${book}\n`,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Published 2 events to /);
      await client.waitForMessages(before + 1);
      await new Promise((wake) => setTimeout(wake, 200));
      assert.deepEqual(client.messages.slice(before), [book]);
    });

    it('POST /publish reaches the allowed client', async () => {
      const before = client.messages.length;
      const book = event(2, { via: 'http' });
      const posted = await httpRequest(app.port, {
        method: 'POST',
        path: '/publish',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: book,
      });
      assert.equal(posted.status, 202, posted.body);
      assert.deepEqual((await client.waitForMessages(before + 1)).slice(before), [book]);
    });

    it('sidecast publish refuses an event without a content type id, and sends nothing', async () => {
      const result = await runCli(['publish', ...flags, '{"model":"book"}']);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /content_type_id/);
    });
  });
}
