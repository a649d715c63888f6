import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { OPTIONS } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { connectClient, type TestClient } from '../support/client.js';
import { httpRequest } from '../support/observe.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const KEY = 'publish-key-for-tests';
/** --max-event-bytes by default (1 MiB); a request body may hold four times that. */
const MAX_EVENT_BYTES = OPTIONS['max-event-bytes'].defaultValue;
const MAX_BODY_BYTES = 4 * MAX_EVENT_BYTES;
const LIMIT_HINT = '(--max-event-bytes): publish an id and let clients fetch the rest';

/** POST /publish is enabled by an environment-only option, so tests set it on the options. */
function startServer(publishKey: string): Promise<Sidecast> {
  return startSidecast({
    options: { ...serveOptions(), publishKey },
    authenticator: tableAuthenticator({
      'token-all': principal('1', [1, 2, 3]),
      'token-books': principal('2', [2]),
    }),
    logger: createLogger('silent'),
  });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A raw HTTP request, so tests control every header (fetch would add a content-type). */
async function post(
  app: Sidecast,
  body: string | Buffer,
  headers: Record<string, string> = {},
  chunked = false,
): Promise<Reply> {
  const length = { 'content-length': String(Buffer.byteLength(body)) };
  const answer = await httpRequest(app.port, {
    method: 'POST',
    path: '/publish',
    headers: chunked ? headers : { ...length, ...headers },
    body,
  });
  return { status: answer.status, headers: answer.headers, body: JSON.parse(answer.body) };
}

const json = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

describe('POST /publish', () => {
  let app: Sidecast;
  let all: TestClient;
  let books: TestClient;

  before(async () => {
    app = await startServer(KEY);
    all = await connectClient(app.url, 'token-all');
    books = await connectClient(app.url, 'token-books');
    await waitFor(() => app.server.liveConnectionCount === 2, 5000, 'two live clients');
  });
  after(async () => {
    all.ws.close();
    books.ws.close();
    await app.close();
  });

  /**
   * Proves a refused request delivered nothing: a marker published afterwards on the same bus must
   * be the next message both clients get (the memory bus keeps order).
   */
  async function assertNothingDelivered(): Promise<void> {
    const before = [all.messages.length, books.messages.length];
    const marker = event(2, { marker: Math.random() });
    await app.bus.publish(marker);
    await all.waitForMessages(before[0]! + 1);
    await books.waitForMessages(before[1]! + 1);
    assert.deepEqual(all.messages.slice(before[0]), [marker]);
    assert.deepEqual(books.messages.slice(before[1]), [marker]);
  }

  it('publishes one event, byte for byte, to the clients allowed to see it', async () => {
    const book = '{"model": "book", "object": "Caf\\u00e9", "content_type_id": 2, "n": 1.0}';
    const author = JSON.stringify({ model: 'author', content_type_id: 3 });
    for (const payload of [book, author]) {
      const reply = await post(app, payload, json);
      assert.deepEqual(
        { status: reply.status, body: reply.body },
        { status: 202, body: { published: 1 } },
      );
    }
    assert.deepEqual(await all.waitForMessages(2), [book, author]);
    assert.deepEqual(await books.waitForMessages(1), [book]);
    await assertNothingDelivered();
  });

  it('publishes a JSON array as one event per element, each with its own bytes', async () => {
    const start = [all.messages.length, books.messages.length];
    const elements = [
      '{"content_type_id": 2, "big": 12345678901234567890, "text": "\\u00e9"}',
      '{"content_type_id":3, "tricky": "a\\"],[{, \\\\"}',
      '{ "content_type_id" : 1 , "nested": {"a": [1, 2]} }',
    ];
    const reply = await post(app, ` [\n${elements.join(' ,\n')}\n] `, {
      ...json,
      'content-type': 'application/json; charset=utf-8',
    });
    assert.equal(reply.status, 202);
    assert.deepEqual(reply.body, { published: 3 });
    assert.deepEqual((await all.waitForMessages(start[0]! + 3)).slice(start[0]), elements);
    assert.deepEqual((await books.waitForMessages(start[1]! + 1)).slice(start[1]), [elements[0]]);
    await assertNothingDelivered();
  });

  it('refuses, with a status and a message that say what is wrong, and delivers nothing', async () => {
    const oversize = JSON.stringify({ content_type_id: 2, pad: 'x'.repeat(MAX_EVENT_BYTES) });
    const cases: [
      string,
      Reply['body'] & object,
      number,
      string | Buffer,
      Record<string, string>,
    ][] = [
      [
        'bad JSON',
        { error: 'EVENT_INVALID', message: 'body is not valid JSON' },
        400,
        '{"content_type_id": 2',
        json,
      ],
      ['empty body', { error: 'EVENT_INVALID', message: 'body is not valid JSON' }, 400, '', json],
      [
        'missing content_type_id',
        { error: 'EVENT_INVALID', message: 'invalid event: no integer content_type_id' },
        400,
        '{"model": "book"}',
        json,
      ],
      [
        'string content_type_id',
        { error: 'EVENT_INVALID', message: 'invalid event: no integer content_type_id' },
        400,
        '{"content_type_id": "2"}',
        json,
      ],
      [
        'fractional content_type_id',
        { error: 'EVENT_INVALID', message: 'invalid event: no integer content_type_id' },
        400,
        '{"content_type_id": 2.5}',
        json,
      ],
      [
        'null content_type_id',
        { error: 'EVENT_INVALID', message: 'invalid event: content_type_id is null' },
        400,
        '{"content_type_id": null}',
        json,
      ],
      [
        'a number',
        { error: 'EVENT_INVALID', message: 'invalid event: not a JSON object' },
        400,
        '2',
        json,
      ],
      [
        'a string',
        { error: 'EVENT_INVALID', message: 'invalid event: not a JSON object' },
        400,
        '"x"',
        json,
      ],
      [
        'null',
        { error: 'EVENT_INVALID', message: 'invalid event: not a JSON object' },
        400,
        'null',
        json,
      ],
      [
        'empty array',
        { error: 'EVENT_INVALID', message: 'empty array: no events to publish' },
        400,
        '[]',
        json,
      ],
      [
        'array with one bad element',
        { error: 'EVENT_INVALID', message: 'event 1: invalid event: no integer content_type_id' },
        400,
        '[{"content_type_id": 2}, {"content_type_id": "3"}, {"content_type_id": 3}]',
        json,
      ],
      [
        'nested array',
        { error: 'EVENT_INVALID', message: 'event 0: invalid event: not a JSON object' },
        400,
        '[[{"content_type_id": 2}]]',
        json,
      ],
      [
        'body that is not UTF-8',
        { error: 'EVENT_INVALID', message: 'body is not UTF-8' },
        400,
        Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x32, 0x7d]),
        json,
      ],
      [
        'oversize event',
        {
          error: 'PUBLISH_REFUSED',
          message: `event is ${Buffer.byteLength(oversize)} bytes, the limit is ${MAX_EVENT_BYTES} ${LIMIT_HINT}`,
        },
        413,
        oversize,
        json,
      ],
      [
        'oversize event in an array',
        {
          error: 'PUBLISH_REFUSED',
          message: `event 1: event is ${Buffer.byteLength(oversize)} bytes, the limit is ${MAX_EVENT_BYTES} ${LIMIT_HINT}`,
        },
        413,
        `[{"content_type_id": 2}, ${oversize}]`,
        json,
      ],
      [
        'oversize batch',
        {
          error: 'PUBLISH_REFUSED',
          message: `request body is larger than ${MAX_BODY_BYTES} bytes`,
        },
        413,
        `[${Array(5)
          .fill(event(2, { pad: 'x'.repeat(MAX_EVENT_BYTES - 100) }))
          .join(',')}]`,
        json,
      ],
      [
        'no Authorization header',
        { error: 'PUBLISH_REFUSED', message: 'missing "Authorization: Bearer KEY" header' },
        401,
        event(2),
        { 'content-type': 'application/json' },
      ],
      [
        'wrong key',
        { error: 'PUBLISH_REFUSED', message: 'wrong publish key' },
        401,
        event(2),
        { ...json, authorization: `Bearer ${KEY}x` },
      ],
      [
        'another scheme',
        { error: 'PUBLISH_REFUSED', message: 'missing "Authorization: Bearer KEY" header' },
        401,
        event(2),
        { ...json, authorization: `Basic ${Buffer.from(`x:${KEY}`).toString('base64')}` },
      ],
      [
        'text/plain',
        {
          error: 'PUBLISH_REFUSED',
          message: 'content-type must be application/json, got "text/plain"',
        },
        415,
        event(2),
        { ...json, 'content-type': 'text/plain' },
      ],
      [
        'no content-type',
        { error: 'PUBLISH_REFUSED', message: 'content-type must be application/json, got none' },
        415,
        event(2),
        { authorization: json.authorization },
      ],
    ];
    for (const [what, body, status, payload, headers] of cases) {
      const reply = await post(app, payload, headers);
      assert.deepEqual({ status: reply.status, body: reply.body }, { status, body }, what);
      assert.equal(reply.headers['content-type'], 'application/json', what);
      if (status === 401) assert.equal(reply.headers['www-authenticate'], 'Bearer', what);
    }
    await assertNothingDelivered();
  });

  it('refuses an oversize body sent without a content-length', async () => {
    const reply = await post(app, `[${' '.repeat(MAX_BODY_BYTES + 1)}]`, json, true);
    assert.equal(reply.status, 413);
    assert.deepEqual(reply.body, {
      error: 'PUBLISH_REFUSED',
      message: `request body is larger than ${MAX_BODY_BYTES} bytes`,
    });
    await assertNothingDelivered();
  });

  it('takes the scheme name in any case, as HTTP says', async () => {
    const reply = await post(app, event(2, { scheme: 'lower' }), {
      ...json,
      authorization: `bearer ${KEY}`,
    });
    assert.equal(reply.status, 202);
    const seen = books.messages.length;
    assert.deepEqual((await books.waitForMessages(seen + 1)).slice(seen), [
      event(2, { scheme: 'lower' }),
    ]);
  });
});

describe('POST /publish, disabled and local', () => {
  it('answers 404 when SIDECAST_PUBLISH_KEY is not set, and delivers nothing', async () => {
    const app = await startServer('');
    try {
      const client = await connectClient(app.url, 'token-all');
      await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'a live client');
      const reply = await post(app, event(2), json);
      assert.equal(reply.status, 404);
      assert.deepEqual(reply.body, {
        error: 'PUBLISH_REFUSED',
        message: 'POST /publish is disabled: set SIDECAST_PUBLISH_KEY to enable it',
      });
      const marker = event(1, { marker: true });
      await app.bus.publish(marker);
      assert.deepEqual(await client.waitForMessages(1), [marker]);
      client.ws.close();
    } finally {
      await app.close();
    }
  });

  it('reaches only the local server with the memory bus', async () => {
    const here = await startServer(KEY);
    const there = await startServer(KEY);
    try {
      const local = await connectClient(here.url, 'token-all');
      const remote = await connectClient(there.url, 'token-all');
      await waitFor(
        () => here.server.liveConnectionCount === 1 && there.server.liveConnectionCount === 1,
        5000,
        'a live client on each server',
      );
      const sent = event(2, { where: 'here' });
      assert.equal((await post(here, sent, json)).status, 202);
      assert.deepEqual(await local.waitForMessages(1), [sent]);
      const marker = event(2, { where: 'there' });
      await there.bus.publish(marker);
      assert.deepEqual(await remote.waitForMessages(1), [marker]);
      local.ws.close();
      remote.ws.close();
    } finally {
      await Promise.all([here.close(), there.close()]);
    }
  });
});
