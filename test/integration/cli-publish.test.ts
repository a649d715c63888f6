import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { OPTIONS } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { runCli } from '../support/cli.js';
import { connectClient, type TestClient } from '../support/client.js';
import { createRedisServer, type RedisServer } from '../support/faults.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

/**
 * `sidecast publish` and POST /publish through real Redis: two sidecast instances share one
 * channel (unique to this run), and a plain Redis subscriber records every message on it.
 */
const REDIS_URL = 'redis://127.0.0.1:6379/1';
const CHANNEL = `sidecast-test-cli-publish-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
const KEY = `key-${randomBytes(8).toString('hex')}`;
const BUS_FLAGS = ['--bus', 'redis', '--redis', REDIS_URL, '--channel', CHANNEL];
/** --max-event-bytes by default, and what a refusal tells the publisher to do instead. */
const MAX_EVENT_BYTES = OPTIONS['max-event-bytes'].defaultValue;
const LIMIT_HINT = '(--max-event-bytes): publish an id and let clients fetch the rest';

/** An event of exactly `bytes` bytes. */
function eventOf(bytes: number): string {
  const shell = JSON.stringify({ content_type_id: 2, pad: '' });
  return JSON.stringify({ content_type_id: 2, pad: 'x'.repeat(bytes - shell.length) });
}

function startInstance(): Promise<Sidecast> {
  return startSidecast({
    options: { ...serveOptions(BUS_FLAGS), publishKey: KEY },
    authenticator: tableAuthenticator({
      'token-books': principal('2', [2]),
      'token-authors': principal('3', [3]),
    }),
    logger: createLogger('silent'),
  });
}

describe('publishing through Redis to every sidecast instance', () => {
  let instances: Sidecast[];
  let books: TestClient[];
  let authors: TestClient[];
  let spy: Redis;
  const onChannel: string[] = [];

  before(async () => {
    spy = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await spy.connect();
    await spy.subscribe(CHANNEL);
    spy.on('message', (_channel: string, message: string) => onChannel.push(message));
    instances = [await startInstance(), await startInstance()];
    books = await Promise.all(instances.map((app) => connectClient(app.url, 'token-books')));
    authors = await Promise.all(instances.map((app) => connectClient(app.url, 'token-authors')));
    await waitFor(
      () => instances.every((app) => app.server.liveConnectionCount === 2),
      10_000,
      'two live clients on each instance',
    );
  });

  after(async () => {
    for (const client of [...books, ...authors]) client.ws.close();
    await Promise.all(instances.map((app) => app.close()));
    spy.disconnect();
  });

  /** What each client got since `marks`, after an event every one of them receives. */
  function counts(): number[] {
    return [...books, ...authors].map((client) => client.messages.length);
  }

  async function assertOnlyMarkerFollows(marks: number[], channelMark: number): Promise<void> {
    const marker = JSON.stringify({ content_type_id: 2, marker: randomBytes(4).toString('hex') });
    const markerForAuthors = JSON.stringify({ content_type_id: 3, marker: true });
    const result = await runCli(['publish', '-', ...BUS_FLAGS], {
      input: `${marker}\n${markerForAuthors}\n`,
    });
    assert.equal(result.code, 0, result.stderr);
    const clients = [...books, ...authors];
    await Promise.all(clients.map((client, i) => client.waitForMessages(marks[i]! + 1)));
    books.forEach((client, i) => assert.deepEqual(client.messages.slice(marks[i]), [marker]));
    authors.forEach((client, i) =>
      assert.deepEqual(client.messages.slice(marks[books.length + i]), [markerForAuthors]),
    );
    await waitFor(() => onChannel.length >= channelMark + 2, 5000, 'the markers on the channel');
    assert.deepEqual(onChannel.slice(channelMark), [marker, markerForAuthors]);
  }

  it('sidecast publish EVENT reaches the allowed clients of every instance, byte for byte', async () => {
    const marks = counts();
    const book = '{"model": "book", "object": "Caf\\u00e9", "content_type_id": 2}';
    const result = await runCli(['publish', ...BUS_FLAGS, book]);
    assert.deepEqual(result, {
      code: 0,
      stdout: `Published 1 event to Redis at ${REDIS_URL}, channel "${CHANNEL}".\n`,
      stderr: '',
    });
    for (const [i, client] of books.entries())
      assert.deepEqual((await client.waitForMessages(marks[i]! + 1)).slice(marks[i]), [book]);
    await assertOnlyMarkerFollows(counts(), onChannel.length);
    // The authors got the marker only: the book event was never theirs.
    authors.forEach((client) => assert.ok(!client.messages.includes(book)));
  });

  it('sidecast publish - sends one event per line, in order, skipping blank lines', async () => {
    const marks = counts();
    const lines = [event(2, { n: 1 }), event(3, { n: 2 }), event(2, { n: 3 })];
    const result = await runCli(['publish', '-'], {
      input: `${lines[0]}\r\n\n${lines[1]}\n   \n${lines[2]}`,
      env: { SIDECAST_REDIS: REDIS_URL, SIDECAST_CHANNEL: CHANNEL },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      `Published 3 events to Redis at ${REDIS_URL}, channel "${CHANNEL}".\n`,
    );
    for (const [i, client] of books.entries()) {
      const got = await client.waitForMessages(marks[i]! + 2);
      assert.deepEqual(got.slice(marks[i]), [lines[0], lines[2]]);
    }
    for (const [i, client] of authors.entries()) {
      const got = await client.waitForMessages(marks[books.length + i]! + 1);
      assert.deepEqual(got.slice(marks[books.length + i]), [lines[1]]);
    }
  });

  it('refuses bad events with a clear error, before sending anything', async () => {
    const marks = counts();
    const channelMark = onChannel.length;
    const oversize = JSON.stringify({ content_type_id: 2, pad: 'x'.repeat(MAX_EVENT_BYTES) });
    const size = Buffer.byteLength(oversize);
    const cases: [string[], string | undefined, string][] = [
      [['{"content_type_id": 2'], undefined, 'invalid event: not JSON'],
      [['{"model": "book"}'], undefined, 'invalid event: no integer content_type_id'],
      [['{"content_type_id": "2"}'], undefined, 'invalid event: no integer content_type_id'],
      [['{"content_type_id": 2.5}'], undefined, 'invalid event: no integer content_type_id'],
      [['{"content_type_id": null}'], undefined, 'invalid event: content_type_id is null'],
      [['[{"content_type_id": 2}]'], undefined, 'invalid event: not a JSON object'],
      [['42'], undefined, 'invalid event: not a JSON object'],
      [
        ['-'],
        `${oversize}\n`,
        `line 1: event is ${size} bytes, the limit is ${MAX_EVENT_BYTES} ${LIMIT_HINT}`,
      ],
      [
        ['--max-event-bytes', '2KiB', eventOf(2049)],
        undefined,
        `event is 2049 bytes, the limit is 2048 ${LIMIT_HINT}`,
      ],
      [
        ['--max-event-bytes=4096', '-'],
        `${eventOf(4096)}\n${eventOf(4097)}\n`,
        `line 2: event is 4097 bytes, the limit is 4096 ${LIMIT_HINT}`,
      ],
      [
        ['-'],
        `${event(2)}\n${event(3)}\n\n{"content_type_id": 2,}\n${event(2)}\n`,
        'line 4: invalid event: not JSON',
      ],
      [['-'], `${event(2)}\n{}\n`, 'line 2: invalid event: no integer content_type_id'],
    ];
    for (const [args, input, message] of cases) {
      const result = await runCli(['publish', ...BUS_FLAGS, ...args], input ? { input } : {});
      assert.deepEqual(
        result,
        { code: 1, stdout: '', stderr: `sidecast: ${message}; nothing was published\n` },
        args.join(' '),
      );
    }
    const viaEnv = await runCli(['publish', ...BUS_FLAGS, eventOf(1500)], {
      env: { SIDECAST_MAX_EVENT_BYTES: '1024' },
    });
    assert.deepEqual(viaEnv, {
      code: 1,
      stdout: '',
      stderr: `sidecast: event is 1500 bytes, the limit is 1024 ${LIMIT_HINT}; nothing was published\n`,
    });
    const badLimit = await runCli(['publish', ...BUS_FLAGS, '--max-event-bytes', '10', event(2)]);
    assert.deepEqual(badLimit, {
      code: 2,
      stdout: '',
      stderr: 'sidecast: --max-event-bytes: must be between 1024 and 8388608 bytes\n',
    });
    const empty = await runCli(['publish', ...BUS_FLAGS, '-'], { input: '\n  \n' });
    assert.deepEqual(empty, {
      code: 1,
      stdout: '',
      stderr: 'sidecast: no events on standard input; nothing was published\n',
    });
    await assertOnlyMarkerFollows(marks, channelMark);
  });

  it('refuses the memory bus, pointing to POST /publish, and bad usage', async () => {
    const memory = await runCli(['publish', '--bus', 'memory', event(2)]);
    assert.equal(memory.code, 2);
    assert.match(memory.stderr, /^sidecast: --bus memory only reaches the process that publishes/);
    assert.match(memory.stderr, /POST the events to the server's \/publish endpoint/);
    const viaEnv = await runCli(['publish', event(2)], { env: { SIDECAST_BUS: 'memory' } });
    assert.equal(viaEnv.code, 2);
    assert.equal(viaEnv.stderr, memory.stderr);
    for (const [args, stderr] of [
      [[], 'sidecast: missing EVENT (usage: sidecast publish [OPTIONS] EVENT | -)\n'],
      [[event(2), event(3)], `sidecast: unexpected argument "${event(3)}"\n`],
      [['--token', 'x', event(2)], 'sidecast: unknown option --token (see --help)\n'],
      [
        ['--bus', 'kafka', event(2)],
        'sidecast: --bus: expected one of redis, redis-streams, nats, nats-jetstream, redis-cluster, memory, got "kafka"\n',
      ],
    ] as const) {
      const result = await runCli(['publish', ...args]);
      assert.deepEqual(result, { code: 2, stdout: '', stderr }, args.join(' '));
    }
  });

  it('says which Redis it could not reach', async () => {
    const result = await runCli(['publish', '--redis', 'redis://127.0.0.1:1/0', event(2)]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^sidecast: cannot publish to Redis at redis:\/\/127\.0\.0\.1:1\/0, channel "events": .+\n$/,
    );
    assert.equal(result.stdout, '');
  });

  it('lists every option with its default and environment variable in --help', async () => {
    const result = await runCli(['publish', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: sidecast publish \[OPTIONS\] EVENT \| -\n/);
    assert.match(result.stdout, /--bus KIND .*\[default: redis; env SIDECAST_BUS\]/);
    assert.match(
      result.stdout,
      /--redis URL .*\[default: redis:\/\/127\.0\.0\.1:6379\/1; env SIDECAST_REDIS\]/,
    );
    assert.match(result.stdout, /--channel NAME .*\[default: events; env SIDECAST_CHANNEL\]/);
    assert.match(
      result.stdout,
      /--max-event-bytes BYTES .*\[default: 1048576; env SIDECAST_MAX_EVENT_BYTES\]/,
    );
  });

  it('POST /publish on one instance reaches the allowed clients of every instance', async () => {
    const marks = counts();
    const body = `[${event(3, { via: 'http' })}, ${event(2, { via: 'http' })}]`;
    const response = await fetch(`http://127.0.0.1:${instances[0]!.port}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body,
    });
    assert.equal(response.status, 202);
    assert.deepEqual(await response.json(), { published: 2 });
    for (const [i, client] of books.entries()) {
      const got = await client.waitForMessages(marks[i]! + 1);
      assert.deepEqual(got.slice(marks[i]), [event(2, { via: 'http' })]);
    }
    for (const [i, client] of authors.entries()) {
      const got = await client.waitForMessages(marks[books.length + i]! + 1);
      assert.deepEqual(got.slice(marks[books.length + i]), [event(3, { via: 'http' })]);
    }
  });
});

/**
 * A batch that Redis stops taking half-way, on both paths: a redis-server of the test's own is
 * killed once a subscriber of its own has seen the first events. Both stop at the first failure
 * and say the same thing: which bus, why, and how many of the events went out.
 */
describe('a batch cut short by a Redis outage', () => {
  const TOTAL = 40_000;
  const SEEN_BEFORE_KILL = 100;
  let redis: RedisServer;
  let spy: Redis;
  let channel: string;
  let seen: string[];
  const batch = Array.from({ length: TOTAL }, (_, n) => event(2, { n }));

  before(async () => {
    redis = await createRedisServer();
  });
  after(() => redis.stop());

  async function startRedisAndSpy(): Promise<void> {
    await redis.start();
    channel = `sidecast-test-cut-short-${randomBytes(6).toString('hex')}`;
    seen = [];
    spy = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    spy.on('error', () => undefined);
    await spy.connect();
    await spy.subscribe(channel);
    spy.on('message', (_channel: string, message: string) => seen.push(message));
  }

  /** Kills Redis once the first events have gone through it. */
  async function killRedisMidBatch(): Promise<void> {
    await waitFor(() => seen.length >= SEEN_BEFORE_KILL, 30_000, 'the first events on Redis');
    await redis.stop();
    spy.disconnect();
  }

  /** The message both paths give, and the count it states. */
  function assertCutShort(message: string): number {
    const prefix = `cannot publish to Redis at ${redis.url}, channel "${channel}": `;
    assert.ok(message.startsWith(prefix), message);
    const match = / \((\d+) of (\d+) events were published\)$/.exec(message);
    assert.ok(match && Number(match[2]) === TOTAL, message);
    const published = Number(match[1]);
    // Redis had passed on at least the events the spy saw, less one whose answer it never sent.
    assert.ok(published >= SEEN_BEFORE_KILL - 1 && published < TOTAL, message);
    // In order, and only what came before the failure.
    assert.ok(seen.length <= published + 1, `${seen.length} seen, ${published} published`);
    assert.ok(
      seen.every((payload, i) => payload === batch[i]),
      'the spy saw the start of the batch',
    );
    return published;
  }

  it('sidecast publish exits 1 and says how many of the events were published', async () => {
    await startRedisAndSpy();
    const [result] = await Promise.all([
      runCli(['publish', '-', '--redis', redis.url, '--channel', channel], {
        input: `${batch.join('\n')}\n`,
      }),
      killRedisMidBatch(),
    ]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '');
    const line = /^sidecast: (.*)\n$/.exec(result.stderr);
    assert.ok(line, result.stderr);
    assertCutShort(line[1]!);
  });

  it('POST /publish answers 503 with the same message and the count published', async () => {
    await startRedisAndSpy();
    const app = await startSidecast({
      options: {
        ...serveOptions(['--bus', 'redis', '--redis', redis.url, '--channel', channel]),
        publishKey: KEY,
      },
      authenticator: tableAuthenticator({}),
      logger: createLogger('silent'),
    });
    try {
      const [response] = await Promise.all([
        fetch(`http://127.0.0.1:${app.port}/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: `[${batch.join(',')}]`,
        }),
        killRedisMidBatch(),
      ]);
      assert.equal(response.status, 503);
      const body = (await response.json()) as { error: string; message: string; published: number };
      assert.equal(body.error, 'BUS_UNAVAILABLE');
      assert.equal(body.published, assertCutShort(body.message));
      assert.deepEqual(Object.keys(body).sort(), ['error', 'message', 'published']);
    } finally {
      await app.close();
    }
  });
});
