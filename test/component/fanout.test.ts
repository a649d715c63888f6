import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { connectClient } from '../support/client.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

describe('fan-out over the memory bus', () => {
  let app: Sidecast;
  const authenticator = tableAuthenticator({
    'token-root': principal('1', [1, 2, 3, 4]),
    'token-books': principal('2', [2]),
    'token-authors': principal('3', [3]),
    'token-none': principal('4', []),
  });

  before(async () => {
    app = await startTestServer([], { authenticator });
  });
  after(() => app.close());

  it('sends each event, byte for byte, to exactly the connections allowed to see it', async () => {
    const root = await connectClient(app.url, 'token-root');
    const books = await connectClient(app.url, 'token-books');
    const authors = await connectClient(app.url, 'token-authors');
    const none = await connectClient(app.url, 'token-none');
    await waitFor(() => app.server.liveConnectionCount === 4, 5000, 'four live connections');

    // Python's json.dumps bytes: ", " separators and \\u escapes must survive untouched.
    const bookEvent =
      '{"model": "book", "object": "Caf\\u00e9", "content_type_id": 2, "object_id": "7"}';
    const authorEvent = event(3, { object: 'Ada' });
    const nobodyEvent = event(99);
    await app.bus.publish(bookEvent);
    await app.bus.publish(authorEvent);
    await app.bus.publish(nobodyEvent);
    await app.bus.publish(event(4));

    assert.deepEqual(await root.waitForMessages(3), [bookEvent, authorEvent, event(4)]);
    assert.deepEqual(await books.waitForMessages(1), [bookEvent]);
    assert.deepEqual(await authors.waitForMessages(1), [authorEvent]);
    // A later event proves the earlier ones would have arrived by now.
    await app.bus.publish(event(2, { marker: 'last' }));
    await books.waitForMessages(2);
    assert.equal(books.messages.length, 2);
    assert.equal(authors.messages.length, 1);
    assert.deepEqual(none.messages, []);
    for (const client of [root, books, authors, none]) client.ws.close();
  });

  it('drops broken events, counts them, and keeps delivering the next ones', async () => {
    const client = await connectClient(app.url, 'token-books');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'only the new connection live');
    for (const broken of [
      'not json',
      '[1,2]',
      '{"content_type_id": "2"}',
      '{"content_type_id": 2.5}',
      '{}',
      'null',
      '{"content_type_id": null}',
    ]) {
      await app.bus.publish(broken);
    }
    const good = event(2);
    await app.bus.publish(good);
    assert.deepEqual(await client.waitForMessages(1), [good]);
    const metrics = await app.metrics.registry.getSingleMetricAsString(
      'sidecast_events_dropped_total',
    );
    assert.match(metrics, /reason="invalid_event"} 7/);
    client.ws.close();
  });

  it('closes with 1011 "authentication failed" for a bad token', async () => {
    const client = await connectClient(app.url, 'not a token');
    assert.deepEqual(await client.closed, { code: 1011, reason: 'authentication failed' });
  });
});
