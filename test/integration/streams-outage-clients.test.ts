/**
 * The redis-streams bus end to end through outages: a sidecast server on a private redis-server,
 * a guide client and a v1 client connected, events published by another connection while Redis
 * hangs (SIGSTOP, then SIGCONT) and while it is killed and restarted with its append-only file.
 * Both clients receive every event, late, in order, once; the v1 one under the stream's ids.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { liveClient, type TestClient } from '../support/client.js';
import { createRedisServer, type RedisServer } from '../support/faults.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { connectV1, eventsOf, welcomeOf } from '../support/v1.js';
import { waitFor } from '../support/wait.js';

const STREAM = 'events';

describe('redis-streams bus: clients through Redis outages', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecast-outage-'));
  let redis: RedisServer;
  let publisher: Redis;
  let app: Sidecast;
  let guide: TestClient;
  let v1: TestClient;
  const sent: string[] = [];
  const ids: string[] = [];

  async function publish(count: number, label: string): Promise<void> {
    for (let n = 0; n < count; n++) {
      const payload = event(2, { label, n });
      sent.push(payload);
      const id = await publisher.xadd(STREAM, 'MAXLEN', '~', '1000', '*', 'payload', payload);
      ids.push(id!);
    }
  }

  /** Every client has every event so far, in order, once. */
  async function allDelivered(): Promise<void> {
    assert.deepEqual(await guide.waitForMessages(sent.length, 20_000), sent);
    const received = await eventsOf(v1, sent.length);
    assert.deepEqual(
      received,
      sent.map((payload, index) => ({ offset: ids[index], payload })),
    );
    // Nothing twice: a moment later neither has received more than was published.
    await new Promise((wake) => setTimeout(wake, 200));
    assert.equal(guide.messages.length, sent.length);
    assert.equal(v1.messages.length, sent.length + 1, 'the welcome, then each event once');
  }

  before(async () => {
    redis = await createRedisServer(undefined, { appendOnlyDir: dir });
    await redis.start();
    publisher = new Redis(redis.url, { maxRetriesPerRequest: null });
    await publisher.xadd(STREAM, '*', 'payload', event(99));
    app = await startSidecast({
      options: serveOptions(['--bus', 'redis-streams', '--redis', redis.url, '--stream', STREAM]),
      authenticator: tableAuthenticator({ 'token-books': principal('2', [2]) }),
    });
    guide = await liveClient(app, 'token-books');
    v1 = await connectV1(app.url, { token: 'token-books' });
    await welcomeOf(v1);
  });
  after(async () => {
    guide?.ws.terminate();
    v1?.ws.terminate();
    await app?.close();
    publisher?.disconnect();
    redis?.resume();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers what was published while Redis hung, once it answers', async () => {
    await publish(3, 'before');
    await allDelivered();
    redis.pause();
    await waitFor(() => !app.bus.status().ready, 10_000, 'the bus to notice the hang');
    // Queued on the publisher's socket; Redis takes them when it runs again.
    const during = publish(10, 'during the hang');
    await new Promise((wake) => setTimeout(wake, 300));
    redis.resume();
    await during;
    await allDelivered();
    await waitFor(() => app.bus.status().ready, 10_000, 'ready again');
  });

  it('delivers what was published while its connection was gone, after a restart with persistence', async () => {
    await redis.stop(); // SIGKILL: the append-only file keeps the stream
    await waitFor(() => !app.bus.status().ready, 10_000, 'the bus to notice the loss');
    await redis.start();
    // Published before sidecast's reconnection backoff has ended: they arrive late, not never.
    await publish(10, 'after the restart');
    await allDelivered();
    await waitFor(() => app.bus.status().ready, 10_000, 'ready again');
    assert.equal(app.server.liveConnectionCount, 2, 'nobody was disconnected');
  });
});
