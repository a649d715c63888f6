/**
 * Anything can publish on the Redis channel, not only sidecast's own publishers (which refuse
 * events over --max-event-bytes). An oversized event published straight on the channel, between
 * good ones, is dropped, logged and counted by every server, and costs nobody another event or
 * their connection.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { OPTIONS } from '../../src/config.js';
import { connectClient, type TestClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { captureLogs, type CapturedLogs } from '../support/observe.js';
import { principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const REDIS_URL = 'redis://127.0.0.1:6379/1';
const CHANNEL = `sidecast-test-large-${randomBytes(6).toString('hex')}`;
const LIMIT = OPTIONS['max-event-bytes'].defaultValue;

function eventOf(seq: number, bytes = 0): string {
  const small = JSON.stringify({ content_type_id: 8, seq });
  if (bytes === 0) return small;
  const padded = JSON.stringify({
    content_type_id: 8,
    seq,
    pad: 'x'.repeat(bytes - small.length - 9),
  });
  assert.equal(Buffer.byteLength(padded), bytes);
  return padded;
}

describe('oversized events published straight on Redis', () => {
  let app: Sidecast;
  let logs: CapturedLogs;
  let clients: TestClient[];
  let publisher: Redis;

  before(async () => {
    logs = captureLogs();
    app = await startSidecast({
      options: serveOptions(['--bus', 'redis', '--redis', REDIS_URL, '--channel', CHANNEL]),
      authenticator: tableAuthenticator({
        'token-ann': principal('ann', [8]),
        'token-bob': principal('bob', [8]),
      }),
      logger: logs.logger,
    });
    clients = await Promise.all(['token-ann', 'token-bob'].map((t) => connectClient(app.url, t)));
    await waitFor(() => app.server.liveConnectionCount === 2, 5000, 'two live clients');
    publisher = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await publisher.connect();
  });
  after(async () => {
    for (const client of clients) client.ws.close();
    publisher.disconnect();
    await app.close();
  });

  it('drops and counts them, and every client gets every good event', async () => {
    const oversized = [eventOf(1, LIMIT + 1), eventOf(3, 6 * LIMIT)];
    assert.ok(oversized.every((payload) => Buffer.byteLength(payload) > LIMIT));
    const good = [eventOf(0), eventOf(2), eventOf(4), eventOf(5, LIMIT)];
    // In one pipeline, so the server reads them back to back, as from a busy publisher.
    const pipeline = publisher.pipeline();
    for (const payload of [good[0]!, oversized[0]!, good[1]!, oversized[1]!, good[2]!, good[3]!])
      pipeline.publish(CHANNEL, payload);
    const results = (await pipeline.exec()) ?? [];
    assert.deepEqual(
      results.map(([error, receivers]) => [error, receivers]),
      Array.from({ length: 6 }, () => [null, 1]),
      'one subscriber (the server) got each message from Redis',
    );

    for (const client of clients) {
      await waitFor(() => client.messages.length >= good.length, 10_000, 'the good events');
      // Compared by sequence number: a failure should not print megabytes.
      const seqs = client.messages.map((m) => (JSON.parse(m) as { seq: number }).seq);
      assert.deepEqual(seqs, [0, 2, 4, 5]);
      assert.ok(
        client.messages.every((payload, i) => payload === good[i]),
        'byte for byte',
      );
    }
    assert.equal(
      await metric(app.port, 'sidecast_events_dropped_total{reason="too_large"}'),
      oversized.length,
    );
    const dropped = logs.entries().filter((entry) => entry.msg === 'event dropped');
    // Anyone can publish on Redis, so drops are logged once per reason per interval; the metric
    // above counts each one.
    assert.deepEqual(
      dropped.map((entry) => [entry.reason, entry.limit]),
      [['too large', LIMIT]],
    );
    // Nobody was disconnected: not the clients, not the server's subscription.
    assert.equal(app.server.liveConnectionCount, 2);
    assert.equal(await metric(app.port, 'sidecast_slow_consumer_closes_total'), 0);
    assert.equal(await metric(app.port, 'sidecast_bus_outages_total'), 0);
    const after = eventOf(6);
    await publisher.publish(CHANNEL, after);
    for (const client of clients)
      await waitFor(() => client.messages.at(-1) === after, 5000, 'the next event');
  });
});
