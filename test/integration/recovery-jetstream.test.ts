/**
 * Protocol v1 recovery over the nats-jetstream bus, end to end, on the shared NATS at
 * 127.0.0.1:4222 (a stream and subjects of this run's own): a publisher writes into the stream as
 * any NATS client would; a client that disconnects from one server resumes on another with exactly
 * the missed events it may see, under their stream sequences, then live ones, whether the
 * other server replays from memory or, having started after those events, from the stream itself.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from 'nats';
import { startSidecast, type Sidecast } from '../../src/app.js';
import type { TestClient } from '../support/client.js';
import {
  recoveryAuthenticator,
  resumeWithMissedEvents,
  type RecoveryBus,
} from '../support/recovery.js';
import { event, serveOptions } from '../support/server.js';
import { connectV1, eventsOf, welcomeOf } from '../support/v1.js';

const RUN = `t${randomBytes(4).toString('hex')}`;
const FLAGS = [
  ...['--bus', 'nats-jetstream', '--nats', 'nats://127.0.0.1:4222'],
  ...['--nats-subject-prefix', RUN, '--nats-stream', RUN],
];

describe('protocol v1 recovery over NATS JetStream', () => {
  const servers: Sidecast[] = [];
  const clients: TestClient[] = [];
  let nats: NatsConnection;

  function start(): Promise<Sidecast> {
    return startSidecast({
      options: serveOptions(FLAGS),
      authenticator: recoveryAuthenticator(),
    });
  }

  /** Publishes into the stream; returns the stream sequence, which is the event's offset. */
  async function publish(payload: string): Promise<string> {
    const id = JSON.parse(payload).content_type_id as number;
    const ack = await nats.jetstream().publish(`${RUN}.events.${id}`, payload);
    return String(ack.seq);
  }

  async function v1(server: Sidecast, first: object): Promise<TestClient> {
    const client = await connectV1(server.url, first);
    clients.push(client);
    return client;
  }
  const bus: RecoveryBus = { publish, connect: v1 };

  before(async () => {
    nats = await connect({ servers: '127.0.0.1:4222' });
    servers.push(await start(), await start());
  });
  after(async () => {
    for (const client of clients) client.ws.terminate();
    await Promise.all(servers.map((server) => server.close()));
    const jsm = await nats.jetstreamManager();
    await jsm.streams.delete(RUN).catch(() => undefined);
    await nats.close();
  });

  it('resumes on another server with exactly the missed permitted events, then live', async () => {
    const [a, b] = servers as [Sidecast, Sidecast];
    const first = await v1(a, { token: 'token-books' });
    const welcome = await welcomeOf(first);
    assert.equal(welcome.recoverable, true);
    const seen = event(2, { n: 'seen' });
    const seenId = await publish(seen);
    assert.deepEqual(await eventsOf(first, 1), [{ offset: seenId, payload: seen }]);
    first.ws.close();
    const expected = await resumeWithMissedEvents(bus, b, {
      epoch: welcome.epoch,
      offset: seenId,
    });

    // A server started after all this holds none of it in memory: it reads the stream.
    const late = await start();
    servers.push(late);
    const watcherLate = await v1(late, { token: 'token-root' });
    await welcomeOf(watcherLate);
    const marker = event(3, { n: 'marker' });
    await publish(marker);
    await eventsOf(watcherLate, 1);
    const again = await v1(late, {
      token: 'token-books',
      since: { epoch: welcome.epoch, offset: seenId },
    });
    const fromStream = await welcomeOf(again);
    assert.equal(fromStream.recovered, true);
    assert.equal(fromStream.replayed, 3);
    assert.deepEqual(await eventsOf(again, 3), expected);
  });

  it('answers a position from another history with recovered false, then goes live', async () => {
    const client = await v1(servers[0]!, {
      token: 'token-books',
      since: { epoch: 'another-history', offset: '1' },
    });
    const welcome = await welcomeOf(client);
    assert.equal(welcome.recovered, false);
    const payload = event(2);
    const id = await publish(payload);
    assert.deepEqual(await eventsOf(client, 1), [{ offset: id, payload }]);
  });
});
