/**
 * Permission changes reaching open connections, over the memory bus and its control channel,
 * with real WebSocket clients of both protocols: updated in place with nothing lost for the
 * content types kept, revoked with 1008, on a control message or on the periodic refresh.
 * (The same against a real Django on each database: test/integration/live-permissions-*.)
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { closeOf, connectClient, liveClient, type TestClient } from '../support/client.js';
import type { Counter } from 'prom-client';
import {
  directoryAuthenticator,
  event,
  startTestServer,
  type TableUser,
} from '../support/server.js';
import { connectV1, eventsOf, welcomeOf } from '../support/v1.js';
import { waitFor } from '../support/wait.js';

const REVOKED = { code: 1008, reason: 'access revoked' };

function user(contentTypeIds: number[]): TableUser {
  return { contentTypeIds, isActive: true, stamp: 'password-1' };
}

/** The `n` of each event received, by content type. */
function sequences(messages: readonly string[]): Map<number, number[]> {
  const byType = new Map<number, number[]>();
  for (const text of messages) {
    const { content_type_id: type, n } = JSON.parse(text) as { content_type_id: number; n: number };
    byType.set(type, [...(byType.get(type) ?? []), n]);
  }
  return byType;
}

/** A counter's value straight from the registry, summed over the samples matching `labels`. */
async function counted(counter: Counter, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values
    .filter((value) => Object.entries(labels).every(([k, v]) => value.labels[k] === v))
    .reduce((sum, value) => sum + value.value, 0);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('live permissions over the memory bus', () => {
  const apps: Sidecast[] = [];
  const clients: TestClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.ws.terminate();
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function start(users: Record<string, TableUser>, flags: string[] = []) {
    const tokens = Object.fromEntries(Object.keys(users).map((id) => [`token-${id}`, id]));
    const authenticator = directoryAuthenticator(tokens, users);
    const app = await startTestServer(['--permissions-refresh', '0', ...flags], { authenticator });
    apps.push(app);
    return { app, authenticator };
  }

  async function guide(app: Sidecast, userId: string): Promise<TestClient> {
    const client = await liveClient(app, `token-${userId}`);
    clients.push(client);
    return client;
  }

  it('moves a connection to a new permission set in place, losing nothing it keeps', async () => {
    const users = { ann: user([1, 2]) };
    const { app } = await start(users);
    const ann = await guide(app, 'ann');
    // Events of both kinds flow while the change is applied: content type 2 must arrive whole.
    for (let n = 0; n < 300; n++) {
      await app.bus.publish(event(1, { n }));
      await app.bus.publish(event(2, { n }));
      // Lets timers run, so that the re-check lands while events still flow.
      if (n % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      if (n === 150) {
        users.ann = user([2, 3]);
        await app.bus.control.publish('{"type":"users","ids":["ann"]}');
      }
    }
    await app.server.permissionsSettled();
    await app.bus.publish(event(1, { n: 300 }));
    await app.bus.publish(event(3, { n: 0 }));
    await app.bus.publish(event(2, { n: 300 }));
    await waitFor(() => ann.messages.length > 0 && JSON.parse(ann.messages.at(-1)!).n === 300);
    const seen = sequences(ann.messages);
    assert.deepEqual(seen.get(2), range(0, 301), 'every event of the kept content type, in order');
    const lost = seen.get(1)!;
    assert.deepEqual(lost, range(0, lost.length), 'the removed one: a prefix, then nothing');
    assert.ok(lost.length >= 151 && lost.length < 301, `stopped after ${lost.length}`);
    assert.deepEqual(seen.get(3), [0], 'the gained one from then on');
    assert.equal(ann.ws.readyState, ann.ws.OPEN, 'the same connection all along');
    assert.equal(await counted(app.metrics.permissionChanges), 1);
  });

  it('does the same for protocol v1 clients', async () => {
    const users = { ann: user([1]) };
    const { app } = await start(users);
    const ann = await connectV1(app.url, { token: 'token-ann' });
    clients.push(ann);
    await welcomeOf(ann);
    await app.bus.publish(event(1, { n: 0 }));
    await app.bus.publish(event(2, { n: 0 }));
    users.ann = user([2]);
    await app.bus.control.publish('{"type":"users","ids":["ann"]}');
    await waitFor(async () => (await counted(app.metrics.permissionChanges)) === 1);
    await app.bus.publish(event(1, { n: 1 }));
    await app.bus.publish(event(2, { n: 1 }));
    const events = await eventsOf(ann, 2);
    assert.deepEqual(
      events.map((e) => JSON.parse(e.payload)),
      [JSON.parse(event(1, { n: 0 })), JSON.parse(event(2, { n: 1 }))],
    );
  });

  it('closes the connections of a deactivated, deleted or re-passworded user with 1008', async () => {
    const users: Record<string, TableUser> = {
      inactive: user([1]),
      deleted: user([1]),
      repassword: user([1]),
      bob: user([1]),
    };
    const { app } = await start(users);
    const closing = [
      await guide(app, 'inactive'),
      await guide(app, 'inactive'),
      await guide(app, 'deleted'),
      await guide(app, 'repassword'),
    ];
    const bob = await guide(app, 'bob');
    users.inactive!.isActive = false;
    delete users.deleted;
    users.repassword!.stamp = 'password-2';
    await app.bus.control.publish(
      '{"type":"users","ids":["inactive","deleted","repassword","bob"]}',
    );
    for (const client of closing) assert.deepEqual(await closeOf(client), REVOKED);
    // A token issued under the new password is accepted, and stays.
    const again = await guide(app, 'repassword');
    await app.bus.publish(event(1, { n: 1 }));
    assert.deepEqual(await bob.waitForMessages(1), [event(1, { n: 1 })]);
    assert.deepEqual(await again.waitForMessages(1), [event(1, { n: 1 })]);
    for (const client of closing) assert.deepEqual(client.messages, [], 'nothing after revocation');
    assert.equal(await counted(app.metrics.revocations, { reason: 'inactive' }), 2);
    assert.equal(await counted(app.metrics.revocations, { reason: 'deleted' }), 1);
    assert.equal(await counted(app.metrics.revocations, { reason: 'credentials_changed' }), 1);
  });

  it('applies changes on the periodic refresh without any control message', async () => {
    const users = { ann: user([1]), bob: user([1]) };
    const { app, authenticator } = await start(users, ['--permissions-refresh', '0.3']);
    const ann = await guide(app, 'ann');
    const bob = await guide(app, 'bob');
    await guide(app, 'bob');
    users.ann = user([2]);
    users.bob!.isActive = false;
    assert.deepEqual(await closeOf(bob, 3000), REVOKED);
    await waitFor(async () => (await counted(app.metrics.permissionChanges)) === 1);
    await app.bus.publish(event(1, { n: 1 }));
    await app.bus.publish(event(2, { n: 1 }));
    assert.deepEqual(await ann.waitForMessages(1), [event(2, { n: 1 })]);
    // One read per user per round, however many connections they hold.
    assert.ok(authenticator.userReads.length >= 1);
    for (const ids of authenticator.userReads) assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...authenticator.userReads[0]!].sort(), ['ann', 'bob']);
  });

  it('counts and logs bad control messages, and disconnects nobody', async () => {
    const users = { ann: user([1]) };
    const { app, authenticator } = await start(users);
    const ann = await guide(app, 'ann');
    for (const text of ['nonsense', '{"type":"users","ids":[{}]}', '{"type":"later"}', '']) {
      await app.bus.control.publish(text);
    }
    await waitFor(async () => (await counted(app.metrics.controlMessages)) === 4);
    assert.equal(await counted(app.metrics.controlMessages, { outcome: 'malformed' }), 3);
    assert.equal(await counted(app.metrics.controlMessages, { outcome: 'unknown' }), 1);
    await app.bus.publish(event(1, { n: 1 }));
    assert.deepEqual(await ann.waitForMessages(1), [event(1, { n: 1 })]);
    assert.deepEqual(authenticator.userReads, []);
  });

  it('leaves a client that is not yet live alone', async () => {
    const users = { ann: user([1]) };
    const { app } = await start(users);
    const waiting = await connectClient(app.url);
    clients.push(waiting);
    users.ann.isActive = false;
    await app.bus.control.publish('{"type":"all"}');
    await app.server.permissionsSettled();
    assert.equal(waiting.ws.readyState, waiting.ws.OPEN);
  });
});
