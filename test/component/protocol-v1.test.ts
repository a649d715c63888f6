/**
 * Protocol v1 on a bus without history (the memory bus): negotiated by subprotocol, one welcome
 * that says nothing can be recovered, every event in an envelope holding its payload verbatim,
 * refusals like the guide's, and guide clients on the same server seeing exactly what they
 * always did.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { closeOf, connectClient, type TestClient } from '../support/client.js';
import { metricReaches } from '../support/metrics.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { connectV1, envelope, eventsOf, V1, welcomeOf } from '../support/v1.js';
import { waitFor } from '../support/wait.js';

describe('protocol v1 over the memory bus', () => {
  let app: Sidecast;
  const authenticator = tableAuthenticator({
    'token-root': principal('1', [1, 2, 3]),
    'token-books': principal('2', [2]),
  });

  before(async () => {
    app = await startTestServer([], { authenticator });
  });
  after(() => app.close());

  async function live(count: number): Promise<void> {
    await waitFor(() => app.server.liveConnectionCount === count, 5000, `${count} live`);
  }

  async function closeAll(...clients: TestClient[]): Promise<void> {
    for (const client of clients) client.ws.close();
    await live(0);
  }

  it('welcomes, then sends each permitted event in an envelope, next to unchanged guide clients', async () => {
    const v1 = await connectV1(app.url, { token: 'token-books' });
    const guide = await connectClient(app.url, 'token-books');
    const v1Root = await connectV1(app.url, { token: 'token-root', extra: { ignored: true } });
    await live(3);
    assert.equal(v1.ws.protocol, V1);
    assert.equal(guide.ws.protocol, '');
    const welcome = await welcomeOf(v1);
    assert.equal(welcome.recoverable, false);
    assert.equal(welcome.recovered, false);
    assert.equal(welcome.replayed, 0);
    assert.equal((await welcomeOf(v1Root)).epoch, welcome.epoch, 'one epoch per process');

    // Python's json.dumps bytes: ", " separators and \\u escapes must survive untouched.
    const books = [
      '{"model": "book", "object": "Caf\\u00e9", "content_type_id": 2, "object_id": "7"}',
      event(2, { object: 'Ünïcode ✓', nested: { a: [1, 2] } }),
    ];
    const authors = event(3);
    await app.bus.publish(books[0]!);
    await app.bus.publish(authors);
    await app.bus.publish(books[1]!);

    assert.deepEqual(await guide.waitForMessages(2), books, 'the guide client gets bare payloads');
    const received = await eventsOf(v1, 2);
    assert.deepEqual(
      received.map((e) => e.payload),
      books,
    );
    for (const [i, { offset, payload }] of received.entries()) {
      assert.equal(v1.messages[i + 1], envelope(offset, payload), 'the exact envelope');
      assert.ok(v1.messages[i + 1]!.includes(books[i]!), 'the payload text verbatim');
    }
    const rootEvents = await eventsOf(v1Root, 3);
    assert.deepEqual(
      rootEvents.map((e) => e.payload),
      [books[0], authors, books[1]],
    );
    const offsets = rootEvents.map((e) => BigInt(e.offset));
    assert.ok(offsets[0]! > BigInt(welcome.offset), 'events come after the welcome position');
    assert.ok(offsets[0]! < offsets[1]! && offsets[1]! < offsets[2]!, 'offsets strictly increase');
    // A later event proves nothing else was on its way.
    await app.bus.publish(event(2, { marker: 'last' }));
    await guide.waitForMessages(3);
    await v1.waitForMessages(4);
    assert.equal(guide.messages.length, 3);
    assert.equal(v1.messages.length, 4);
    await closeAll(v1, guide, v1Root);
  });

  it('keeps the guide protocol for clients offering other subprotocols', async () => {
    const other = await connectClient(app.url, 'token-books', {}, ['chat']);
    await live(1);
    assert.equal(other.ws.protocol, 'chat', 'the handshake ws always gave');
    const payload = event(2);
    await app.bus.publish(payload);
    assert.deepEqual(await other.waitForMessages(1), [payload]);
    await closeAll(other);
  });

  it('chooses v1 when it is one of several subprotocols offered', async () => {
    const client = await connectClient(app.url, JSON.stringify({ token: 'token-books' }), {}, [
      'chat',
      V1,
    ]);
    await live(1);
    assert.equal(client.ws.protocol, V1);
    await welcomeOf(client);
    await closeAll(client);
  });

  it('refuses first messages it cannot read like a bad token: 1011 authentication failed', async () => {
    const before = authenticator.calls;
    for (const first of [
      'token-books',
      'not json',
      '"token-books"',
      '["token-books"]',
      'null',
      '{}',
      '{"token": 7}',
      '{"token": null}',
      '{"since": {"epoch": "e", "offset": "1"}}',
      '{"token": "unknown"}',
    ]) {
      const client = await connectV1(app.url, first);
      assert.deepEqual(
        await closeOf(client),
        { code: 1011, reason: 'authentication failed' },
        first,
      );
      assert.deepEqual(client.messages, [], `nothing sent before the refusal of ${first}`);
    }
    assert.equal(authenticator.calls - before, 1, 'only the well-formed message was authenticated');
  });

  it('closes with 1003 for a binary first message', async () => {
    const client = await connectV1(app.url);
    client.ws.send(Buffer.from(JSON.stringify({ token: 'token-books' })));
    assert.deepEqual(await closeOf(client), {
      code: 1003,
      reason: 'binary messages are not accepted',
    });
  });

  it('answers any since with recovered false, never a refusal, then goes live', async () => {
    const sinces: unknown[] = [
      { epoch: 'someone-else', offset: '3' },
      'yesterday',
      42,
      null,
      [],
      {},
      { epoch: 1, offset: '2' },
      { epoch: 'e', offset: { n: 1 } },
      { epoch: 'e', offset: '99999999999999999999999' },
    ];
    const clients: TestClient[] = [];
    for (const since of sinces)
      clients.push(await connectV1(app.url, { token: 'token-books', since }));
    await live(sinces.length);
    for (const client of clients) {
      const welcome = await welcomeOf(client);
      assert.equal(welcome.recovered, false);
      assert.equal(welcome.recoverable, false);
      assert.equal(welcome.replayed, 0);
    }
    const payload = event(2);
    await app.bus.publish(payload);
    for (const client of clients) {
      const [received] = await eventsOf(client, 1);
      assert.equal(received!.payload, payload);
    }
    assert.equal(
      await metricReaches(app.url, 'sidecast_replays_total{outcome="no_history"}', 2),
      2,
      'well-formed positions: the bus keeps no history',
    );
    assert.equal(await metricReaches(app.url, 'sidecast_replays_total{outcome="invalid"}', 7), 7);
    await closeAll(...clients);
  });
});
