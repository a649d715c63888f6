/**
 * Protocol v1 recovery over the Redis Streams bus, end to end: two sidecast servers read one
 * stream that a publisher writes as Django would (XADD ... payload <event>); a client that
 * disconnects from one resumes on the other with exactly the missed events it may see, under the
 * stream's own entry ids, then live ones; a position from another history is answered recovered
 * false. The component test (test/component/recovery.test.ts) covers the server's side of every
 * case over a fake history; this one checks the driver and the server together.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { liveClient, type TestClient } from '../support/client.js';
import {
  recoveryAuthenticator,
  resumeWithMissedEvents,
  type RecoveryBus,
} from '../support/recovery.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { connectV1, eventsOf, welcomeOf } from '../support/v1.js';

const REDIS_URL = 'redis://127.0.0.1:6379/1';
const STREAM = `sidecast-test-recovery-${randomBytes(6).toString('hex')}`;

describe('protocol v1 recovery over Redis Streams', () => {
  const servers: Sidecast[] = [];
  const clients: TestClient[] = [];
  let redis: Redis;

  function start(): Promise<Sidecast> {
    return startSidecast({
      options: serveOptions(['--bus', 'redis-streams', '--redis', REDIS_URL, '--stream', STREAM]),
      authenticator: recoveryAuthenticator(),
    });
  }

  /** Publishes as Django does; returns the entry id, which is the event's offset. */
  async function xadd(payload: string): Promise<string> {
    const id = await redis.xadd(STREAM, 'MAXLEN', '~', '1000', '*', 'payload', payload);
    assert.ok(id);
    return id;
  }

  async function v1(server: Sidecast, first: object): Promise<TestClient> {
    const client = await connectV1(server.url, first);
    clients.push(client);
    return client;
  }
  const bus: RecoveryBus = { publish: xadd, connect: v1 };

  before(async () => {
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    // The stream exists before the servers start, so its history (and epoch) is the one the
    // tests publish into; the first entry is an event nobody may see.
    await xadd(event(99));
    servers.push(await start(), await start());
  });
  after(async () => {
    for (const client of clients) client.ws.terminate();
    await Promise.all(servers.map((server) => server.close()));
    await redis.del(STREAM);
    redis.disconnect();
  });

  it('resumes on another server with exactly the missed permitted events, then live', async () => {
    const [a, b] = servers as [Sidecast, Sidecast];
    const first = await v1(a, { token: 'token-books' });
    const welcome = await welcomeOf(first);
    assert.equal(welcome.recoverable, true);
    assert.equal(welcome.recovered, false);
    const seen = event(2, { n: 'seen' });
    const seenId = await xadd(seen);
    const [received] = await eventsOf(first, 1);
    assert.deepEqual(received, { offset: seenId, payload: seen });
    first.ws.close();
    await resumeWithMissedEvents(bus, b, { epoch: welcome.epoch, offset: seenId });
  });

  it('answers a position from another history with recovered false, then goes live', async () => {
    const client = await v1(servers[0]!, {
      token: 'token-books',
      since: { epoch: 'another-history', offset: '1-0' },
    });
    const welcome = await welcomeOf(client);
    assert.equal(welcome.recovered, false);
    assert.equal(welcome.recoverable, true);
    const payload = event(2);
    const id = await xadd(payload);
    assert.deepEqual(await eventsOf(client, 1), [{ offset: id, payload }]);
  });

  it('answers a client that missed more than --recover-max with recovered false', async () => {
    const capped = await startSidecast({
      options: serveOptions([
        ...['--bus', 'redis-streams', '--redis', REDIS_URL, '--stream', STREAM],
        ...['--recover-max', '3'],
      ]),
      authenticator: tableAuthenticator({ 'token-books': principal('2', [2]) }),
    });
    servers.push(capped);
    const first = await v1(capped, { token: 'token-books' });
    const left = await welcomeOf(first);
    first.ws.close();
    for (let n = 0; n < 4; n++) await xadd(event(2, { n: `missed ${n}` }));
    const watcher = await v1(capped, { token: 'token-books' });
    await welcomeOf(watcher);
    const last = await xadd(event(2, { n: 'read' }));
    assert.deepEqual((await eventsOf(watcher, 1))[0]?.offset, last);

    const since = { epoch: left.epoch, offset: left.offset };
    const back = await v1(capped, { token: 'token-books', since });
    const welcome = await welcomeOf(back);
    assert.equal(welcome.recovered, false, 'five entries follow, three may be replayed');
    assert.equal(welcome.replayed, 0);
    const payload = event(2, { n: 'live after the cap' });
    const id = await xadd(payload);
    assert.deepEqual(await eventsOf(back, 1), [{ offset: id, payload }]);
  });

  it('answers a position trimmed from the stream with recovered false, then goes live', async () => {
    const [a] = servers as [Sidecast];
    const first = await v1(a, { token: 'token-books' });
    const left = await welcomeOf(first);
    first.ws.close();
    await xadd(event(2, { n: 'trimmed away' }));
    await xadd(event(2, { n: 'kept' }));
    // What Django's MAXLEN does over time, at once: only the newest entry stays. Server a still
    // holds the trimmed events in its window (and could replay them); a server started after the
    // trim knows only what Redis kept.
    await redis.xtrim(STREAM, 'MAXLEN', 1);
    const late = await start();
    servers.push(late);
    const since = { epoch: left.epoch, offset: left.offset };
    const back = await v1(late, { token: 'token-books', since });
    const welcome = await welcomeOf(back);
    assert.equal(welcome.recovered, false);
    const payload = event(2, { n: 'live after the trim' });
    const id = await xadd(payload);
    assert.deepEqual(await eventsOf(back, 1), [{ offset: id, payload }]);
  });

  it('answers a malformed since with recovered false and replays nothing', async () => {
    const [a] = servers as [Sidecast];
    const { epoch } = await welcomeOf(await v1(a, { token: 'token-books' }));
    for (const since of [
      'yesterday',
      { epoch, offset: 7 },
      { epoch, offset: 'not-an-id' },
      { epoch, offset: '99999999999999-0' },
    ]) {
      const client = await v1(a, { token: 'token-books', since });
      const welcome = await welcomeOf(client);
      assert.equal(welcome.recovered, false, JSON.stringify(since));
      assert.equal(welcome.replayed, 0);
    }
  });

  it('sends guide clients bare payloads from the stream', async () => {
    const guide = await liveClient(servers[1]!, 'token-books');
    clients.push(guide);
    const payload = event(2, { n: 'guide' });
    await xadd(payload);
    assert.deepEqual(await guide.waitForMessages(1), [payload]);
  });
});
