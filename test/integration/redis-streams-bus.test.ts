/**
 * The redis-streams bus against real Redis: the shared one on 6379 (a stream name of this run's
 * own) for delivery, drops, trimming and replays, and redis-servers of the test's own where
 * Redis is counted (INFO commandstats), stopped, cut off, killed or restarted.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startSidecast, type Sidecast } from '../../src/app.js';
import type { Bus, BusHistory, StreamPosition } from '../../src/bus/bus.js';
import {
  createRedisStreamsBus,
  type RedisStreamsBusOptions,
} from '../../src/bus/redis-streams-bus.js';
import { liveClient } from '../support/client.js';
import { createRedisServer, createTcpProxy, type RedisServer } from '../support/faults.js';
import { metricReaches } from '../support/metrics.js';
import { runCli } from '../support/cli.js';
import { captureLogs, httpRequest } from '../support/observe.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const SHARED = 'redis://127.0.0.1:6379/0';
const PUBLISH_KEY = 'publish-key-for-tests';
const RUN = `sidecast-streams-${randomBytes(4).toString('hex')}`;
let streams = 0;
const freshStream = () => `${RUN}-${++streams}`;

interface Received {
  readonly payload: string;
  readonly position: StreamPosition | undefined;
}

interface Reading {
  readonly bus: Bus;
  readonly history: BusHistory;
  readonly received: Received[];
  readonly drops: string[];
  readonly events: string[];
}

const open: Bus[] = [];

/** A bus on the shared Redis that keeps about 100 entries of `stream`, closed after the test. */
function publishingBus(stream: string): Bus {
  const bus = createRedisStreamsBus({
    url: SHARED,
    stream,
    controlChannel: `${stream}:control`,
    historyMaxEntries: 100,
    historyMaxAgeSeconds: 300,
  });
  open.push(bus);
  return bus;
}

async function reading(
  options: Partial<RedisStreamsBusOptions> & { url: string; stream: string },
): Promise<Reading> {
  const received: Received[] = [];
  const drops: string[] = [];
  const events: string[] = [];
  const bus = createRedisStreamsBus({
    controlChannel: `${options.stream}:control`,
    historyMaxEntries: 1000,
    historyMaxAgeSeconds: 300,
    hangAfterMs: 500,
    checkIntervalMs: 200,
    blockMs: 1000,
    ...options,
    observer: {
      onDropped: (reason) => drops.push(reason),
      onDown: () => events.push('down'),
      onUp: () => events.push('up'),
      onReconnect: () => events.push('reconnect'),
      onResumed: () => events.push('resumed'),
    },
  });
  open.push(bus);
  await bus.start((payload, position) => received.push({ payload, position }), {
    failFast: true,
  });
  return { bus, history: bus.history!, received, drops, events };
}

function redisClient(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  return client;
}

async function received(reader: Reading, count: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    () => reader.received.length >= count,
    timeoutMs,
    () => `${count} events, got ${reader.received.length}`,
  );
}

/** Calls of each command since the last CONFIG RESETSTAT, from INFO commandstats. */
async function commandCalls(client: Redis): Promise<Map<string, number>> {
  const info = await client.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}

/** What the bus sent: every command but the counting connection's own INFO and RESETSTAT. */
function busCommands(calls: Map<string, number>): Map<string, number> {
  const sent = new Map(calls);
  sent.delete('info');
  sent.delete('config|resetstat');
  return sent;
}

const payloads = (reader: Reading) => reader.received.map(({ payload }) => payload);

after(async () => {
  await Promise.all(open.map((bus) => bus.close()));
  const client = redisClient(SHARED);
  const keys = await client.keys(`${RUN}-*`);
  if (keys.length > 0) await client.del(...keys);
  client.disconnect();
});

describe('redis-streams bus on the shared Redis', () => {
  let redis: Redis;
  before(() => {
    redis = redisClient(SHARED);
  });
  after(() => redis.disconnect());

  it('delivers entries after the start, in order, with their ids and the epoch in Redis', async () => {
    const stream = freshStream();
    await redis.xadd(stream, '*', 'payload', '{"before":"start"}');
    const reader = await reading({ url: SHARED, stream });
    const start = reader.history.latest();
    assert.equal(start.epoch, await redis.get(`${stream}:epoch`));
    assert.match(start.epoch, /^[0-9a-f]{16}$/);
    const ids: string[] = [];
    for (let index = 0; index < 20; index++) {
      ids.push((await redis.xadd(stream, '*', 'payload', `{"n":${index}}`))!);
    }
    await received(reader, 20);
    assert.deepEqual(
      reader.received.map(({ payload, position }) => [payload, position?.offset, position?.epoch]),
      ids.map((id, index) => [`{"n":${index}}`, id, start.epoch]),
      'every entry after the start, none before it, each with its entry id',
    );
    assert.deepEqual(reader.history.latest(), { offset: ids.at(-1), epoch: start.epoch });
    assert.ok(reader.history.compare('9-0', '10-0') < 0, 'ids compare as numbers');
    assert.ok(reader.history.compare('10-1', '10-0') > 0);
    assert.equal(reader.history.compare(ids[3]!, ids[3]!), 0);
  });

  it('drops entries without a payload or not UTF-8, counted and logged once, while good ones flow', async () => {
    const stream = freshStream();
    const logs = captureLogs();
    const app: Sidecast = await startSidecast({
      options: {
        ...serveOptions(['--bus', 'redis-streams', '--redis', SHARED, '--stream', stream]),
        publishKey: PUBLISH_KEY,
      },
      authenticator: tableAuthenticator({ token: principal('1', [4]) }),
      logger: logs.logger,
    });
    try {
      const client = await liveClient(app, 'token');
      const good = [event(4, { n: 1 }), event(4, { n: 2 }), event(4, { n: 3 })];
      await redis.xadd(stream, '*', 'payload', good[0]!);
      for (let index = 0; index < 5; index++) await redis.xadd(stream, '*', 'body', good[0]!);
      await redis.xadd(stream, '*', 'payload', Buffer.from([0xff, 0xfe, 0x7b]));
      await redis.xadd(stream, '*', 'payload', good[1]!);
      // POST /publish goes through the bus's publish(): into the stream.
      const posted = await httpRequest(app.port, {
        method: 'POST',
        path: '/publish',
        headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
        body: good[2]!,
      });
      assert.equal(posted.status, 202, posted.body);
      assert.deepEqual(await client.waitForMessages(3), good);
      const noPayload = 'sidecast_events_dropped_total{reason="no_payload"}';
      assert.equal(await metricReaches(app.port, noPayload, 5), 5);
      const notUtf8 = 'sidecast_events_dropped_total{reason="not_utf8"}';
      assert.equal(await metricReaches(app.port, notUtf8, 1), 1);
      const lines = logs.entries().filter((entry) => entry.msg === 'event dropped');
      assert.deepEqual(
        lines.map((entry) => entry.reason),
        ['stream entry without a payload field', 'not UTF-8'],
        'one line per reason, however many entries',
      );
      assert.equal(await redis.xlen(stream), 9);
    } finally {
      await app.close();
    }
  });

  it('publishes with XADD MAXLEN ~ --history-max-entries', async () => {
    const stream = freshStream();
    const bus = publishingBus(stream);
    for (let index = 0; index < 1000; index++) await bus.publish(`{"n":${index}}`);
    const length = await redis.xlen(stream);
    // "~" trims whole nodes of the stream (100 entries each by default): about 100 are kept.
    assert.ok(length >= 100 && length < 300, `${length} entries kept of 1000`);
    const [[, fields]] = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [
      [string, string[]],
    ];
    assert.deepEqual(fields, ['payload', '{"n":999}']);
    const info = (await redis.call('XINFO', 'STREAM', stream)) as unknown[];
    assert.equal(info[info.indexOf('entries-added') + 1], 1000);
  });

  it('takes publishes sent at once while it is still connecting', async () => {
    const stream = freshStream();
    const bus = publishingBus(stream);
    await Promise.all(Array.from({ length: 20 }, (_, n) => bus.publish(`{"n":${n}}`)));
    assert.equal(await redis.xlen(stream), 20);
  });

  it('sidecast publish --bus redis-streams adds to the stream, trimmed to --history-max-entries', async () => {
    const stream = freshStream();
    const flags = ['--bus', 'redis-streams', '--redis', SHARED, '--stream', stream];
    const lines = Array.from({ length: 300 }, (_, index) => event(4, { n: index }));
    const result = await runCli(['publish', ...flags, '--history-max-entries', '10', '-'], {
      input: `${lines.join('\n')}\n`,
    });
    assert.equal(result.code, 0, result.stderr);
    const length = await redis.xlen(stream);
    assert.ok(length >= 10 && length < 300, `trimmed as it was published: ${length} kept`);
    const newest = (await redis.xrevrange(stream, '+', '-', 'COUNT', length)).reverse();
    assert.deepEqual(
      newest.map(([, fields]) => fields),
      lines.slice(-length).map((line) => ['payload', line]),
      'the newest events, in order, each as a payload field',
    );
  });

  it('replays from the window: complete, too_many, invalid, another epoch', async () => {
    const stream = freshStream();
    const reader = await reading({ url: SHARED, stream });
    const start = reader.history.latest();
    for (let index = 0; index < 5; index++) await reader.bus.publish(`{"n":${index}}`);
    await received(reader, 5);
    const until = reader.history.latest().offset;
    const offsets = reader.received.map(({ position }) => position!.offset);

    assert.deepEqual(await reader.history.replay(start, until, 5), {
      complete: true,
      entries: offsets.map((offset, index) => ({ offset, payload: `{"n":${index}}` })),
    });
    const fromSecond = await reader.history.replay({ ...start, offset: offsets[1]! }, until, 10);
    assert.deepEqual(
      fromSecond.complete && fromSecond.entries.map(({ offset }) => offset),
      offsets.slice(2),
    );
    const upToThird = await reader.history.replay(start, offsets[2]!, 10);
    assert.equal(upToThird.complete && upToThird.entries.length, 3);
    assert.deepEqual(await reader.history.replay(start, until, 4), {
      complete: false,
      gap: 'too_many',
    });
    assert.deepEqual(await reader.history.replay({ ...start, offset: until }, until, 0), {
      complete: true,
      entries: [],
    });
    for (const offset of ['abc', '12', '1-2-3', '', `${until}x`]) {
      assert.deepEqual(
        await reader.history.replay({ ...start, offset }, until, 10),
        { complete: false, gap: 'invalid' },
        offset,
      );
    }
    assert.deepEqual(await reader.history.replay({ ...start, offset: until }, offsets[0]!, 10), {
      complete: false,
      gap: 'invalid',
    });
    const [ms] = until.split('-');
    assert.deepEqual(await reader.history.replay(start, `${BigInt(ms!) + 1000n}-0`, 10), {
      complete: false,
      gap: 'invalid',
    });
    assert.deepEqual(await reader.history.replay({ ...start, epoch: 'other' }, until, 10), {
      complete: false,
      gap: 'epoch',
    });
  });

  it('counts entries older than --history-max-age as trimmed', async () => {
    const stream = freshStream();
    // Ten minutes ago, by the id's own time; then one now.
    const old = `${Date.now() - 600_000}-0`;
    await redis.xadd(stream, old, 'payload', '{"old":true}');
    const reader = await reading({ url: SHARED, stream, historyMaxAgeSeconds: 300 });
    const position = reader.history.latest();
    await reader.bus.publish('{"new":true}');
    await received(reader, 1);
    const until = reader.history.latest().offset;
    assert.deepEqual(await reader.history.replay({ ...position, offset: '0-0' }, until, 10), {
      complete: false,
      gap: 'trimmed',
    });
    const recent = await reader.history.replay(position, until, 10);
    assert.equal(recent.complete && recent.entries.length, 1, 'a recent position still replays');
  });

  it('reads older history from Redis, and says trimmed once entries after the position are gone', async () => {
    const stream = freshStream();
    const reader = await reading({ url: SHARED, stream, windowMaxEntries: 1 });
    const start = reader.history.latest();
    for (let index = 0; index < 10; index++) await reader.bus.publish(`{"n":${index}}`);
    await received(reader, 10);
    const until = reader.history.latest().offset;
    const cold = await reader.history.replay(start, until, 100);
    assert.deepEqual(
      cold.complete && cold.entries.map(({ payload }) => payload),
      payloads(reader),
      'outside the window: read from Redis, complete',
    );
    const fifth = reader.received[4]!.position!;
    await redis.xtrim(stream, 'MAXLEN', 3);
    assert.deepEqual(await reader.history.replay(start, until, 100), {
      complete: false,
      gap: 'trimmed',
    });
    assert.deepEqual(await reader.history.replay(fifth, until, 100), {
      complete: false,
      gap: 'trimmed',
    });
    // Redis cannot tell whether the entry just before the oldest one left was the last trimmed.
    const seventh = reader.received[6]!.position!;
    assert.deepEqual(await reader.history.replay(seventh, until, 100), {
      complete: false,
      gap: 'trimmed',
    });
    const eighth = reader.received[7]!.position!;
    const kept = await reader.history.replay(eighth, until, 100);
    assert.deepEqual(
      kept.complete && kept.entries.map(({ payload }) => payload),
      ['{"n":8}', '{"n":9}'],
      'from the oldest entry left: complete',
    );
    await redis.xdel(stream, reader.received[8]!.position!.offset);
    assert.deepEqual(await reader.history.replay(eighth, until, 100), {
      complete: false,
      gap: 'trimmed',
    });
    assert.equal(
      (await reader.history.replay(reader.received[8]!.position!, until, 100)).complete,
      true,
      'after the deleted entry: complete',
    );
  });

  it('rotates the epoch when the stream is deleted; every instance adopts the same one', async () => {
    const stream = freshStream();
    const one = await reading({ url: SHARED, stream });
    const two = await reading({ url: SHARED, stream });
    const first = one.history.latest().epoch;
    assert.equal(two.history.latest().epoch, first, 'both instances start with the same epoch');
    await one.bus.publish('{"n":1}');
    await received(one, 1);
    await received(two, 1);
    const old = one.received[0]!.position!;
    await redis.del(stream);
    await waitFor(() => one.history.latest().epoch !== first, 5000, 'the epoch to rotate');
    await waitFor(() => two.history.latest().epoch !== first, 5000, 'the other to adopt it');
    const now = await redis.get(`${stream}:epoch`);
    assert.equal(one.history.latest().epoch, now);
    assert.equal(two.history.latest().epoch, now);
    assert.deepEqual(await one.history.replay(old, one.history.latest().offset, 10), {
      complete: false,
      gap: 'epoch',
    });
    await two.bus.publish('{"n":2}');
    await received(one, 2);
    assert.deepEqual(one.received[1]!.position?.epoch, now, 'events of the new history');
  });
});

describe('redis-streams bus on a redis-server of its own', () => {
  let server: RedisServer;
  let redis: Redis;
  const dirs: string[] = [];
  before(async () => {
    server = await createRedisServer();
    await server.start();
    redis = redisClient(server.url);
  });
  after(async () => {
    server.resume();
    redis.disconnect();
    await server.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('serves replays inside the window with no Redis command', async () => {
    const stream = freshStream();
    const reader = await reading({
      url: server.url,
      stream,
      checkIntervalMs: 60_000,
      // No XREAD completes while commands are counted.
      blockMs: 30_000,
    });
    const start = reader.history.latest();
    for (let index = 0; index < 50; index++) await reader.bus.publish(`{"n":${index}}`);
    await received(reader, 50);
    await sleep(100); // the reader's next XREAD is sent
    await redis.config('RESETSTAT');
    const until = reader.history.latest().offset;
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, index) =>
        reader.history.replay(
          index % 2 ? start : reader.received[index % 50]!.position!,
          until,
          100,
        ),
      ),
    );
    assert.ok(results.every((result) => result.complete));
    assert.deepEqual([...busCommands(await commandCalls(redis))], []);
  });

  it('makes 1,000 concurrent replays of one cold range one read: XRANGE and XINFO once', async () => {
    const stream = freshStream();
    const reader = await reading({
      url: server.url,
      stream,
      checkIntervalMs: 60_000,
      // No XREAD completes while commands are counted.
      blockMs: 30_000,
      windowMaxEntries: 5,
    });
    const start = reader.history.latest();
    for (let index = 0; index < 50; index++) await reader.bus.publish(`{"n":${index}}`);
    await received(reader, 50);
    await sleep(100);
    await redis.config('RESETSTAT');
    const until = reader.history.latest().offset;
    const results = await Promise.all(
      Array.from({ length: 1000 }, () => reader.history.replay(start, until, 100)),
    );
    for (const result of results) {
      assert.deepEqual(
        result.complete && result.entries.map(({ payload }) => payload),
        payloads(reader),
      );
    }
    const sent = busCommands(await commandCalls(redis));
    assert.deepEqual(Object.fromEntries(sent), { xrange: 1, 'xinfo|stream': 1 });
    // Once that read is over, the next replay of the range reads again (no stale cache).
    await reader.history.replay(start, until, 100);
    assert.equal((await commandCalls(redis)).get('xrange'), 2);
  });

  it('a hung Redis (SIGSTOP): not ready, then every event published meanwhile, late, in order, once', async () => {
    const stream = freshStream();
    const reader = await reading({ url: server.url, stream, windowMaxEntries: 2 });
    const start = reader.history.latest();
    const publisher = redisClient(server.url);
    try {
      const sent: string[] = [];
      const publish = async (count: number) => {
        const pending: Promise<unknown>[] = [];
        for (let index = 0; index < count; index++) {
          const payload = `{"n":${sent.length}}`;
          sent.push(payload);
          pending.push(publisher.xadd(stream, '*', 'payload', payload));
        }
        return pending;
      };
      await Promise.all(await publish(5));
      await received(reader, 5);
      server.pause();
      await waitFor(() => !reader.bus.status().ready, 5000, 'the bus to report not ready');
      assert.match(reader.bus.status().detail ?? '', /did not answer for \d+ s/);
      const asked = Date.now();
      assert.deepEqual(
        await reader.history.replay(start, reader.history.latest().offset, 100),
        { complete: false, gap: 'unavailable' },
        'older history cannot be read from a hung Redis',
      );
      // At once: not after the 5 s command timeout (the bound leaves room for a busy machine).
      assert.ok(Date.now() - asked < 1000, 'and the replay says so at once');
      const recent = reader.received[3]!.position!;
      const fromWindow = await reader.history.replay(recent, reader.history.latest().offset, 100);
      assert.equal(fromWindow.complete, true, 'the window still answers');
      const during = await publish(20); // queued on the publisher's socket until Redis runs again
      await sleep(300);
      server.resume();
      await Promise.all(during);
      await received(reader, 25);
      await waitFor(() => reader.bus.status().ready, 5000, 'ready again');
      await sleep(300);
      assert.deepEqual(payloads(reader), sent, 'every event, in order, once');
      assert.deepEqual(reader.events, ['up', 'down', 'resumed']);
    } finally {
      server.resume();
      publisher.disconnect();
    }
  });

  it('cut off from Redis while another connection publishes: resumes from the last id read', async () => {
    const stream = freshStream();
    const proxy = await createTcpProxy(server.port);
    const reader = await reading({ url: `redis://127.0.0.1:${proxy.port}/0`, stream });
    try {
      await redis.xadd(stream, '*', 'payload', '{"n":0}');
      await received(reader, 1);
      const epoch = reader.history.latest().epoch;
      await proxy.cut();
      await waitFor(() => !reader.bus.status().ready, 5000, 'not ready');
      const sent = ['{"n":0}'];
      for (let index = 1; index <= 30; index++) {
        sent.push(`{"n":${index}}`);
        await redis.xadd(stream, '*', 'payload', sent.at(-1)!);
      }
      await sleep(500);
      assert.equal(reader.received.length, 1, 'nothing arrives while cut off');
      await proxy.restore();
      await received(reader, 31);
      await waitFor(() => reader.bus.status().ready, 10_000, 'ready again');
      await sleep(500);
      assert.deepEqual(payloads(reader), sent);
      assert.equal(reader.history.latest().epoch, epoch, 'the same history');
      assert.deepEqual(reader.events, ['up', 'down', 'reconnect']);
    } finally {
      await proxy.close();
    }
  });

  it('Redis killed and restarted with its append-only file: events arrive late, in order, once, same epoch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecast-aof-'));
    dirs.push(dir);
    const persistent = await createRedisServer(undefined, { appendOnlyDir: dir });
    await persistent.start();
    const stream = freshStream();
    const publisher = redisClient(persistent.url);
    try {
      const reader = await reading({ url: persistent.url, stream });
      const epoch = reader.history.latest().epoch;
      const sent: string[] = [];
      const publish = async (count: number) => {
        for (let index = 0; index < count; index++) {
          sent.push(`{"n":${sent.length}}`);
          await publisher.xadd(stream, '*', 'payload', sent.at(-1)!);
        }
      };
      await publish(5);
      await received(reader, 5);
      await persistent.stop(); // SIGKILL
      await waitFor(() => !reader.bus.status().ready, 5000, 'not ready');
      await persistent.start();
      await publish(20); // likely before the reader's reconnection backoff has ended
      await received(reader, 25);
      await waitFor(() => reader.bus.status().ready, 10_000, 'ready again');
      await sleep(500);
      assert.deepEqual(payloads(reader), sent);
      assert.equal(reader.history.latest().epoch, epoch, 'the history survived: same epoch');
      assert.equal(await publisher.get(`${stream}:epoch`), epoch);
    } finally {
      publisher.disconnect();
      await persistent.stop();
    }
  });

  it('Redis restarted empty: the epoch changes, old positions get epoch, new events flow', async () => {
    const stream = freshStream();
    const reader = await reading({ url: server.url, stream });
    const epoch = reader.history.latest().epoch;
    await redis.xadd(stream, '*', 'payload', '{"n":0}');
    await received(reader, 1);
    const old = reader.received[0]!.position!;
    await server.stop();
    await server.start();
    await waitFor(() => reader.history.latest().epoch !== epoch, 15_000, 'a new epoch');
    const now = reader.history.latest().epoch;
    assert.equal(await redis.get(`${stream}:epoch`), now);
    assert.deepEqual(await reader.history.replay(old, reader.history.latest().offset, 10), {
      complete: false,
      gap: 'epoch',
    });
    await redis.xadd(stream, '*', 'payload', '{"n":1}');
    await received(reader, 2);
    assert.equal(reader.received[1]!.position?.epoch, now);
  });
});

describe('redis-streams bus start-up', () => {
  let server: RedisServer;
  before(async () => {
    server = await createRedisServer();
  });
  after(() => server.stop());

  it('fails fast, naming Redis, when it cannot be reached and --wait-for-bus is false', async () => {
    const stream = freshStream();
    await assert.rejects(
      startSidecast({
        options: serveOptions([
          '--bus',
          'redis-streams',
          '--redis',
          server.url,
          '--stream',
          stream,
        ]),
        authenticator: tableAuthenticator({}),
        logger: captureLogs().logger,
      }),
      (error: Error) =>
        error.message.includes(`cannot reach Redis at redis://127.0.0.1:${server.port}/0`),
    );
  });

  it('with --wait-for-bus true starts not ready, and reads from the end once Redis appears', async () => {
    const stream = freshStream();
    const app = await startSidecast({
      options: serveOptions([
        ...['--bus', 'redis-streams', '--redis', server.url, '--stream', stream],
        ...['--wait-for-bus', 'true'],
      ]),
      authenticator: tableAuthenticator({ token: principal('1', [4]) }),
      logger: captureLogs().logger,
    });
    try {
      assert.equal(app.bus.status().ready, false);
      const client = await liveClient(app, 'token');
      await server.start();
      await waitFor(() => app.bus.status().ready, 15_000, 'the bus to be ready');
      const redis = redisClient(server.url);
      try {
        const payload = event(4, { after: 'start' });
        await redis.xadd(stream, '*', 'payload', payload);
        assert.deepEqual(await client.waitForMessages(1), [payload]);
        assert.equal(app.bus.history?.latest().epoch, await redis.get(`${stream}:epoch`));
      } finally {
        redis.disconnect();
      }
    } finally {
      await app.close();
    }
  });
});
