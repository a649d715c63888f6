/**
 * --max-event-bytes and --max-buffered agree: an event of the largest size is taken from a
 * publisher and delivered, even to a client that still has events queued; anything larger costs
 * nobody else an event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { OPTIONS } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { connectClient, type TestClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { httpRequest } from '../support/observe.js';
import { principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const KEY = 'publish-key-for-large-events';
const DEFAULT_LIMIT = OPTIONS['max-event-bytes'].defaultValue;

const authenticator = tableAuthenticator({
  'token-ann': principal('ann', [6]),
  'token-bob': principal('bob', [6]),
});

/** An event of exactly `bytes` bytes. */
function eventOf(bytes: number, seq: number): string {
  const shell = JSON.stringify({ content_type_id: 6, seq, pad: '' });
  const payload = JSON.stringify({
    content_type_id: 6,
    seq,
    pad: 'x'.repeat(bytes - shell.length),
  });
  assert.equal(Buffer.byteLength(payload), bytes);
  return payload;
}

async function postEvent(port: number, body: string): Promise<number> {
  const headers = {
    authorization: `Bearer ${KEY}`,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  };
  return (await httpRequest(port, { method: 'POST', path: '/publish', headers, body })).status;
}

/** What `client` received after its first `from` messages, once `count` came or it closed. */
async function arrivals(client: TestClient, from: number, count: number) {
  let closed = 'still open';
  void client.closed.then(({ code, reason }) => (closed = `closed ${code} ${reason}`));
  await waitFor(
    () => client.messages.length >= from + count || closed !== 'still open',
    5000,
    `${count} messages`,
  ).catch(() => undefined);
  const payloads = client.messages.slice(from);
  return { payloads, seqs: payloads.map((m) => (JSON.parse(m) as { seq: number }).seq), closed };
}

async function liveClients(app: Sidecast, tokens: string[]): Promise<TestClient[]> {
  const clients = await Promise.all(tokens.map((token) => connectClient(app.url, token)));
  await waitFor(() => app.server.liveConnectionCount === tokens.length, 5000, 'live clients');
  return clients;
}

describe('events of the largest size, with the default limits', () => {
  let app: Sidecast;
  let clients: TestClient[];
  before(async () => {
    // POST /publish is enabled by an environment-only option, so it is set on the options.
    app = await startSidecast({
      options: { ...serveOptions(), publishKey: KEY },
      authenticator,
      logger: createLogger('silent'),
    });
    clients = await liveClients(app, ['token-ann', 'token-bob']);
  });
  after(async () => {
    for (const client of clients) client.ws.close();
    await app.close();
  });

  it('takes an event of exactly --max-event-bytes over POST /publish and delivers it', async () => {
    const largest = eventOf(DEFAULT_LIMIT, 0);
    assert.equal(await postEvent(app.port, largest), 202);
    for (const client of clients) {
      const got = await arrivals(client, 0, 1);
      assert.deepEqual(got.seqs, [0], got.closed);
      assert.ok(got.payloads[0] === largest, 'byte for byte');
    }
    assert.equal(await postEvent(app.port, eventOf(DEFAULT_LIMIT + 1, 1)), 413);
  });

  it('sends the largest event to a client that still has another one queued', async () => {
    const seen = clients.map((client) => client.messages.length);
    // Published in one go, so each is queued on the sockets before the first is written.
    const burst = [
      eventOf(200, 1),
      eventOf(DEFAULT_LIMIT, 2),
      eventOf(200, 3),
      eventOf(DEFAULT_LIMIT - 1000, 4),
    ];
    await Promise.all(burst.map((payload) => app.bus.publish(payload)));
    // Compared by sequence number: a failure should not print megabytes.
    for (const [i, client] of clients.entries()) {
      const got = await arrivals(client, seen[i]!, burst.length);
      assert.deepEqual(got.seqs, [1, 2, 3, 4], got.closed);
      assert.ok(
        got.payloads.every((payload, n) => payload === burst[n]),
        'byte for byte',
      );
    }
    assert.equal(app.server.liveConnectionCount, 2, 'nobody was closed as too slow');
    assert.equal(await metric(app.port, 'sidecast_slow_consumer_closes_total'), 0);
  });
});
