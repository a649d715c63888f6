/**
 * Permissions changed in place on a bus routed by interest (NATS, the server at 127.0.0.1:4222):
 * a content type a connection gains is subscribed at once, so its events reach it; one nobody may
 * see any more stops reaching the instance once --interest-hold has passed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { createNatsBus } from '../../src/bus/nats-bus.js';
import { liveClient } from '../support/client.js';
import {
  directoryAuthenticator,
  event,
  startTestServer,
  type TableUser,
} from '../support/server.js';
import { waitFor } from '../support/wait.js';

const NATS = 'nats://127.0.0.1:4222';

describe('live permissions on a bus routed by interest', () => {
  const prefix = `sidecast-test-${randomBytes(4).toString('hex')}`;
  const users: Record<string, TableUser> = {
    ann: { contentTypeIds: [1], isActive: true, stamp: 's' },
  };
  const publisher = createNatsBus({ servers: [NATS], subjectPrefix: prefix });
  let app: Sidecast | undefined;
  after(async () => {
    await app?.close();
    await publisher.close();
  });

  async function received(): Promise<number> {
    const { values } = await app!.metrics.eventsReceived.get();
    return values.reduce((sum, value) => sum + value.value, 0);
  }

  it('subscribes to a gained content type at once, and lets a lost one go', async () => {
    const authenticator = directoryAuthenticator({ 'token-ann': 'ann' }, users);
    app = await startTestServer(
      [
        '--bus',
        'nats',
        '--nats',
        NATS,
        '--nats-subject-prefix',
        prefix,
        '--permissions-refresh',
        '0',
        '--interest-hold',
        '0.2',
      ],
      { authenticator },
    );
    const ann = await liveClient(app, 'token-ann');
    await publisher.publish(event(1, { n: 0 }));
    assert.deepEqual(await ann.waitForMessages(1), [event(1, { n: 0 })]);

    users.ann = { contentTypeIds: [2], isActive: true, stamp: 's' };
    await publisher.control.publish('{"type":"users","ids":["ann"]}');
    await waitFor(async () => {
      const { values } = await app!.metrics.permissionChanges.get();
      return (values[0]?.value ?? 0) === 1;
    });
    // The subscription is made when the router gains the content type, and takes a round trip
    // to the broker: probe until one arrives, then every event of content type 2 arrives.
    for (let probe = 0; ann.messages.length < 2; probe++) {
      assert.ok(probe < 50, 'content type 2 never reached the connection');
      await publisher.publish(event(2, { probe }));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seen = ann.messages.length;
    await publisher.publish(event(2, { n: 1 }));
    await ann.waitForMessages(seen + 1);
    assert.equal(ann.messages[seen], event(2, { n: 1 }));

    // After the hold nobody here may see content type 1: the broker stops sending it.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const before = await received();
    const count = ann.messages.length;
    await publisher.publish(event(1, { n: 2 }));
    await publisher.publish(event(2, { n: 3 }));
    await ann.waitForMessages(count + 1);
    assert.deepEqual(ann.messages.slice(count), [event(2, { n: 3 })]);
    assert.equal(await received(), before + 1, 'only the content type 2 event reached it');
  });
});
