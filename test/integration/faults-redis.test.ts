import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { isSidecastError } from '../../src/errors.js';
import { createRedisServer, type RedisServer } from '../support/faults.js';
import { closeOf, liveClient } from '../support/client.js';
import { metric, metricReaches } from '../support/metrics.js';
import { captureLogs, httpGet, type CapturedLogs } from '../support/observe.js';
import {
  directoryAuthenticator,
  event,
  principal,
  serveOptions,
  tableAuthenticator,
  type TableUser,
} from '../support/server.js';
import { waitFor } from '../support/wait.js';

/**
 * The bus failing under a running server: a redis-server of the test's own, on its own port,
 * stopped and started again while clients stay connected.
 */

const authenticator = tableAuthenticator({ token: principal('1', [4]) });

function redisFlags(redis: RedisServer, channel: string, extra: string[] = []): string[] {
  return ['--bus', 'redis', '--redis', redis.url, '--channel', channel, ...extra];
}

async function startApp(flags: string[], logs: CapturedLogs): Promise<Sidecast> {
  return startSidecast({ options: serveOptions(flags), authenticator, logger: logs.logger });
}

async function readyz(app: Sidecast) {
  const answer = await httpGet(app.port, '/readyz');
  return { status: answer.status, ...(JSON.parse(answer.body) as { checks: { bus: string } }) };
}

async function waitForReady(app: Sidecast, ready: boolean, timeoutMs = 15_000): Promise<void> {
  const status = ready ? 200 : 503;
  const answers = async () => (await readyz(app)).status === status;
  await waitFor(answers, timeoutMs, `/readyz to answer ${status}`, 50);
}

describe('Redis faults', () => {
  let redis: RedisServer;
  let publisher: Redis;
  let channel: string;
  const apps: Sidecast[] = [];

  before(async () => {
    redis = await createRedisServer();
    publisher = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    publisher.on('error', () => undefined);
  });
  after(async () => {
    redis.resume(); // in case a test failed while it was stopped
    await Promise.all(apps.map((app) => app.close()));
    publisher.disconnect();
    await redis.stop();
  });

  const freshChannel = () => `sidecast-faults-${randomBytes(6).toString('hex')}`;

  it('fails start-up with one clear error when Redis is unreachable and --wait-for-bus is false', async () => {
    await redis.stop();
    const logs = captureLogs();
    const started = Date.now();
    await assert.rejects(
      startApp(redisFlags(redis, freshChannel()), logs),
      (error: unknown) =>
        isSidecastError(error, 'BUS_UNAVAILABLE') &&
        error.message.includes(`cannot reach Redis at redis://127.0.0.1:${redis.port}/0`) &&
        error.message.includes('ECONNREFUSED'),
    );
    assert.ok(Date.now() - started < 6000, 'fails fast');
    assert.deepEqual(
      logs.entries().filter((entry) => (entry.level as number) >= 50),
      [],
      'the error is reported once, by the caller, not logged as well',
    );
  });

  it('with --wait-for-bus true starts not ready, retries, and delivers once Redis appears', async () => {
    await redis.stop();
    channel = freshChannel();
    const logs = captureLogs();
    const app = await startApp(redisFlags(redis, channel, ['--wait-for-bus', 'true']), logs);
    apps.push(app);
    const notReady = await readyz(app);
    assert.equal(notReady.status, 503);
    assert.match(notReady.checks.bus, /cannot reach Redis at .*ECONNREFUSED/);
    assert.equal((await httpGet(app.port, '/healthz')).status, 200);
    const client = await liveClient(app, 'token');

    await new Promise((resolve) => setTimeout(resolve, 700)); // several failed attempts
    await redis.start();
    await waitForReady(app, true);
    await publisher.connect();
    const payload = event(4, { after: 'start' });
    assert.equal(await publisher.publish(channel, payload), 1);
    assert.deepEqual(await client.waitForMessages(1), [payload]);
    assert.equal(await metric(app.port, 'sidecast_bus_connected'), 1);
    assert.equal(await metric(app.port, 'sidecast_bus_outages_total'), 1);
    const errors = logs.entries().filter((entry) => entry.level === 50);
    assert.equal(errors.length, 1, 'one line for the outage, not one per attempt');
    assert.ok(logs.entries().some((entry) => entry.msg === 'bus connected'));
    await app.close();
  });

  it('keeps clients connected through a Redis outage and resubscribes on its own', async () => {
    await redis.start();
    channel = freshChannel();
    const logs = captureLogs();
    const app = await startApp(redisFlags(redis, channel), logs);
    apps.push(app);
    const client = await liveClient(app, 'token');
    const before = event(4, { phase: 'before' });
    await publisher.publish(channel, before);
    await client.waitForMessages(1);

    await redis.stop();
    await waitForReady(app, false);
    assert.match((await readyz(app)).checks.bus, /Redis/);
    assert.equal(await metric(app.port, 'sidecast_bus_connected'), 0);
    await assert.rejects(app.bus.publish(event(4)), (error: unknown) =>
      isSidecastError(error, 'BUS_UNAVAILABLE'),
    );
    await new Promise((resolve) => setTimeout(resolve, 1000)); // several failed reconnections
    assert.equal(client.ws.readyState, WebSocket.OPEN, 'clients stay connected');

    await redis.start();
    await waitForReady(app, true);
    const afterOutage = event(4, { phase: 'after' });
    assert.equal(await publisher.publish(channel, afterOutage), 1, 'sidecast is subscribed');
    assert.deepEqual(await client.waitForMessages(2), [before, afterOutage]);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    // An earlier scrape of this server may still answer for a second.
    assert.equal(await metricReaches(app.port, 'sidecast_bus_reconnects_total', 1), 1);
    assert.equal(await metric(app.port, 'sidecast_bus_outages_total'), 1);
    const entries = logs.entries();
    assert.equal(entries.filter((entry) => entry.level === 50).length, 1, 'one outage line');
    assert.ok(entries.some((entry) => entry.msg === 'bus connection restored'));
    client.ws.close();
    await app.close();
  });

  it('re-checks every live user once Redis is back: what changed during the outage applies at once', async () => {
    await redis.start();
    channel = freshChannel();
    const users: Record<string, TableUser> = {
      ann: { contentTypeIds: [4], isActive: true, stamp: 'password-1' },
      bob: { contentTypeIds: [4], isActive: true, stamp: 'password-1' },
    };
    const directory = directoryAuthenticator({ 'token-ann': 'ann', 'token-bob': 'bob' }, users);
    const logs = captureLogs();
    // No scheduled re-check: only catching up on the lost control messages can apply the change.
    const flags = ['--permissions-refresh', '0', '--control-channel', freshChannel()];
    const app = await startSidecast({
      options: serveOptions(redisFlags(redis, channel, flags)),
      authenticator: directory,
      logger: logs.logger,
    });
    apps.push(app);
    const [ann, bob] = [await liveClient(app, 'token-ann'), await liveClient(app, 'token-bob')];

    await redis.stop();
    await waitForReady(app, false);
    // Django's control messages about these changes are sent while sidecast cannot hear them.
    users.ann!.isActive = false;
    users.bob!.contentTypeIds = [4, 5];
    const readsBefore = directory.userReads.length;
    await redis.start();
    assert.deepEqual(await closeOf(ann, 15_000), { code: 1008, reason: 'access revoked' });
    await waitForReady(app, true);
    await app.server.permissionsSettled();
    const granted = event(5, { phase: 'granted during the outage' });
    await publisher.publish(channel, granted);
    assert.deepEqual(await bob.waitForMessages(1), [granted]);
    assert.equal(bob.ws.readyState, WebSocket.OPEN);
    assert.ok(directory.userReads.length > readsBefore, 'the users were read again');
    assert.ok(
      logs.entries().some((entry) => String(entry.msg).startsWith('control messages may have')),
      'the catch-up is logged',
    );
    bob.ws.close();
    await app.close();
  });

  it('reports a hung Redis not ready within seconds, keeps the connection, delivers everything after', async (t) => {
    await redis.start();
    channel = freshChannel();
    const logs = captureLogs();
    const app = await startApp(redisFlags(redis, channel), logs);
    apps.push(app);
    const client = await liveClient(app, 'token');
    const before = event(4, { phase: 'before' });
    await publisher.publish(channel, before);
    await client.waitForMessages(1);
    // A second publisher: PUBLISH on a stopped Redis waits in its socket, answered on SIGCONT.
    const hungPublisher = new Redis(redis.url, { maxRetriesPerRequest: null });
    hungPublisher.on('error', () => undefined);
    await hungPublisher.ping();

    const stopped = Date.now();
    redis.pause();
    let published: Promise<number[]> | undefined;
    try {
      await waitForReady(app, false, 10_000);
      const detected = Date.now() - stopped;
      t.diagnostic(`not ready ${detected} ms after SIGSTOP`);
      assert.ok(detected < 6000, `took ${detected} ms`);
      assert.match(
        (await readyz(app)).checks.bus,
        new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${redis.port}/0 did not answer for \\d+ s$`),
      );
      assert.equal(await metric(app.port, 'sidecast_bus_connected'), 0);

      const during = Array.from({ length: 20 }, (_, n) => event(4, { phase: 'during', n }));
      published = Promise.all(during.map((payload) => hungPublisher.publish(channel, payload)));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal((await readyz(app)).status, 503, 'still not ready while Redis is stopped');
      assert.equal(client.messages.length, 1);
      assert.equal(client.ws.readyState, WebSocket.OPEN, 'clients stay connected');

      const resumed = Date.now();
      redis.resume();
      assert.deepEqual(await published, Array(20).fill(1), 'still one subscriber: sidecast');
      await waitForReady(app, true, 5000);
      t.diagnostic(`ready again ${Date.now() - resumed} ms after SIGCONT`);
      assert.deepEqual(await client.waitForMessages(21), [before, ...during]);
      const afterHang = event(4, { phase: 'after' });
      await publisher.publish(channel, afterHang);
      assert.deepEqual((await client.waitForMessages(22))[21], afterHang);
    } finally {
      redis.resume();
      await published?.catch(() => undefined);
      hungPublisher.disconnect();
    }
    assert.equal(await metric(app.port, 'sidecast_bus_connected'), 1);
    assert.equal(await metric(app.port, 'sidecast_bus_outages_total'), 1);
    assert.equal(await metric(app.port, 'sidecast_bus_reconnects_total'), 0, 'no reconnection');
    const entries = logs.entries();
    const errors = entries.filter((entry) => entry.level === 50);
    assert.equal(errors.length, 1, 'the hang is logged once');
    assert.match(errors[0]!.msg as string, /did not answer for \d+ s/);
    assert.equal(entries.filter((entry) => entry.msg === 'bus answering again').length, 1);
    client.ws.close();
    await app.close();
  });

  it('counts a hang that ends in a lost connection as one outage', async () => {
    await redis.start();
    channel = freshChannel();
    const logs = captureLogs();
    const app = await startApp(redisFlags(redis, channel), logs);
    apps.push(app);
    const client = await liveClient(app, 'token');
    redis.pause();
    await waitForReady(app, false, 10_000);
    await redis.stop(); // the connection goes too: ioredis reconnects as after any loss
    await redis.start();
    await waitForReady(app, true);
    const payload = event(4, { phase: 'after restart' });
    assert.equal(await publisher.publish(channel, payload), 1);
    assert.deepEqual(await client.waitForMessages(1), [payload]);
    assert.equal(await metric(app.port, 'sidecast_bus_outages_total'), 1);
    assert.equal(await metric(app.port, 'sidecast_bus_reconnects_total'), 1);
    const entries = logs.entries();
    assert.equal(entries.filter((entry) => entry.level === 50).length, 1, 'one outage line');
    assert.equal(entries.filter((entry) => entry.msg === 'bus connection restored').length, 1);
    client.ws.close();
    await app.close();
  });

  it('closes promptly while Redis is hung', async () => {
    await redis.start();
    const app = await startApp(redisFlags(redis, freshChannel()), captureLogs());
    apps.push(app);
    await app.bus.publish(event(4)); // opens the publishing connection too
    redis.pause();
    try {
      const started = Date.now();
      const closing = app.close().then(() => Date.now() - started);
      const took = await Promise.race([closing, sleep(5000).then(() => Infinity)]);
      assert.ok(took < 3000, `close took ${took} ms`);
    } finally {
      redis.resume();
    }
  });

  it('logs each kind of broken event once and keeps delivering, non-UTF-8 bytes included', async () => {
    await redis.start();
    channel = freshChannel();
    const logs = captureLogs();
    const app = await startApp(redisFlags(redis, channel), logs);
    apps.push(app);
    const client = await liveClient(app, 'token');
    const first = event(4, { n: 1 });
    const broken: (string | Buffer)[] = [
      'not json',
      '[4]',
      '{"content_type_id": "4"}',
      '{"content_type_id": 4.5}',
      '{"content_type_id": null}',
      '',
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
      Buffer.concat([
        Buffer.from('{"content_type_id": 4, "x": "'),
        Buffer.from([0xc3]),
        Buffer.from('"}'),
      ]),
    ];
    const last = '{"content_type_id": 4, "object": "Caf\\u00e9 \u2603"}';
    await publisher.publish(channel, first);
    for (const payload of broken) await publisher.publish(channel, payload);
    await publisher.publish(channel, last);
    assert.deepEqual(await client.waitForMessages(2), [first, last]);
    assert.equal(
      await metric(app.port, 'sidecast_events_dropped_total{reason="invalid_event"}'),
      6,
    );
    assert.equal(await metric(app.port, 'sidecast_events_dropped_total{reason="not_utf8"}'), 2);
    const dropped = logs.entries().filter((entry) => entry.msg === 'event dropped');
    // Repeats of a reason within the interval are counted, not logged.
    assert.deepEqual(dropped.map((entry) => entry.reason).sort(), [
      'content_type_id is null',
      'no integer content_type_id',
      'not JSON',
      'not UTF-8',
      'not a JSON object',
    ]);
    client.ws.close();
    await app.close();
  });
});
