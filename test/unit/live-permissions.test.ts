/**
 * The re-check scheduler over a directory that records its calls: batches per user (never per
 * connection), spread over the interval, control messages for exactly the live users they name,
 * revocations by reason, failures that keep connections. (The real directory, on the three
 * databases, is exercised by the integration tests.)
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Counter } from 'prom-client';
import type { UserDirectory, UserState } from '../../src/auth/authenticator.js';
import { createLogLimiter } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import {
  createLivePermissions,
  type LivePermissions,
  type RecheckedConnection,
} from '../../src/server/live-permissions.js';
import { LiveUsers } from '../../src/server/live-users.js';
import { captureLogs } from '../support/observe.js';
import { waitFor } from '../support/wait.js';

interface FakeConnection extends RecheckedConnection {
  readonly userId: string;
  updates: ReadonlySet<number>[];
  revoked: boolean;
}

/** Users as the database holds them now; tests change them between re-checks. */
function createWorld(batchSize = 500) {
  const rows = new Map<string, UserState>();
  const groups = new Map<string, Set<string>>();
  const reads: string[][] = [];
  const memberReads: { groups: string[]; users: string[] }[] = [];
  const forgotten: (readonly string[] | 'all')[] = [];
  let failing = false;
  const directory: UserDirectory = {
    batchSize,
    async readUsers(ids) {
      reads.push([...ids]);
      if (failing) throw new Error('database down');
      const found = new Map<string, UserState>();
      for (const id of ids) if (rows.has(id)) found.set(id, rows.get(id)!);
      return found;
    },
    async groupMembers(groupIds, ids) {
      memberReads.push({ groups: [...groupIds], users: [...ids] });
      return ids.filter((id) => groupIds.some((group) => groups.get(group)?.has(id)));
    },
    forget(ids) {
      forgotten.push(ids);
    },
  };
  const users = new LiveUsers<FakeConnection>(0);
  function connect(userId: string, stamp = 'stamp-1', session?: string): FakeConnection {
    // What it was allowed when it connected, as the router would hold it.
    let current = rows.get(userId)?.contentTypeIds ?? new Set<number>();
    const connection: FakeConnection = {
      userId,
      credentialStamp: stamp,
      ...(session === undefined ? {} : { session }),
      updates: [],
      revoked: false,
      updateContentTypes(ids) {
        const last = current;
        current = ids;
        connection.updates.push(ids);
        return last.size !== ids.size || [...ids].some((id) => !last.has(id));
      },
      revoke() {
        connection.revoked = true;
        users.remove(userId, connection);
      },
    };
    users.tryAdd(userId, connection);
    return connection;
  }
  function setUser(userId: string, state: Partial<UserState> = {}): void {
    rows.set(userId, {
      isActive: true,
      credentialStamps: new Set(['stamp-1']),
      contentTypeIds: new Set([1]),
      ...state,
    });
  }
  return {
    directory,
    users,
    rows,
    groups,
    reads,
    memberReads,
    forgotten,
    connect,
    setUser,
    fail: (value: boolean) => (failing = value),
  };
}

async function count(counter: Counter, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values
    .filter((value) => Object.entries(labels).every(([k, v]) => value.labels[k] === v))
    .reduce((sum, value) => sum + value.value, 0);
}

const running: LivePermissions[] = [];
afterEach(() => {
  for (const permissions of running.splice(0)) permissions.stop();
});

function start(world: ReturnType<typeof createWorld>, refreshSeconds: number) {
  const metrics = createMetrics();
  const logs = captureLogs();
  const permissions = createLivePermissions(
    { refreshSeconds, coalesceMs: 5 },
    {
      directory: world.directory,
      users: world.users,
      metrics,
      logger: logs.logger,
      log: createLogLimiter(logs.logger),
    },
  );
  running.push(permissions);
  return { permissions, metrics, logs };
}

describe('live permissions', () => {
  it('re-reads each live user once per round, in batches spread over the interval', async () => {
    const world = createWorld(500);
    for (let i = 0; i < 1200; i++) {
      world.setUser(`u${i}`);
      // Two tabs each: a user is read once, whatever number of connections they hold.
      world.connect(`u${i}`);
      world.connect(`u${i}`);
    }
    const started = performance.now();
    const times: number[] = [];
    const read = world.directory.readUsers.bind(world.directory);
    world.directory.readUsers = (ids) => {
      times.push(performance.now() - started);
      return read(ids);
    };
    const { metrics } = start(world, 0.6);
    await waitFor(() => world.reads.length >= 3);
    const round = world.reads.slice(0, 3);
    assert.deepEqual(
      round.map((batch) => batch.length),
      [500, 500, 200],
    );
    assert.equal(new Set(round.flat()).size, 1200, 'every live user, each once');
    // Spread: the first batch waits a third of the interval, the last comes near its end.
    assert.ok(times[0]! >= 150, `first batch at ${times[0]} ms`);
    assert.ok(times[2]! - times[0]! >= 200, `batches at ${times.join(', ')} ms`);
    assert.equal(await count(metrics.permissionRechecks, { trigger: 'refresh' }), 1200);
    assert.equal(await count(metrics.revocations), 0);
  });

  it('keeps a fixed cadence when reads are slow: the time they take does not add up', async () => {
    const world = createWorld();
    world.setUser('ann');
    world.connect('ann');
    const started = performance.now();
    const times: number[] = [];
    const read = world.directory.readUsers.bind(world.directory);
    world.directory.readUsers = async (ids) => {
      times.push(performance.now() - started);
      await sleep(120);
      return read(ids);
    };
    start(world, 0.3);
    await waitFor(() => times.length >= 4, 5000);
    // Reads begin at 300, 600, 900 and 1200 ms; had each round waited an interval after the
    // last read ended, the fourth would begin after 1560 ms.
    assert.ok(times[3]! < 1400, `reads began at ${times.map(Math.round).join(', ')} ms`);
    for (let i = 1; i < 4; i++) {
      assert.ok(times[i]! - times[i - 1]! >= 250, `reads began at ${times.join(', ')} ms`);
    }
  });

  it('applies a changed permission set in place and counts the user once', async () => {
    const world = createWorld();
    world.setUser('ann', { contentTypeIds: new Set([1, 2]) });
    const tabs = [world.connect('ann'), world.connect('ann')];
    const { permissions, metrics } = start(world, 0);
    world.setUser('ann', { contentTypeIds: new Set([2, 3]) });
    permissions.onControl('{"type":"users","ids":["ann"]}');
    await waitFor(() => tabs.every((tab) => tab.updates.length === 1));
    for (const tab of tabs) assert.deepEqual([...tab.updates[0]!].sort(), [2, 3]);
    assert.equal(await count(metrics.permissionChanges), 1);
    assert.equal(await count(metrics.permissionRechecks, { trigger: 'control' }), 1);
    assert.deepEqual(world.forgotten, [['ann']], 'the snapshot of the user is dropped');
  });

  it('revokes deleted, deactivated and re-credentialed users, and no one else', async () => {
    const world = createWorld();
    for (const id of ['gone', 'inactive', 'repassword', 'fine']) world.setUser(id);
    const connections = ['gone', 'inactive', 'repassword', 'fine'].map((id) => world.connect(id));
    const later = world.connect('repassword', 'stamp-2');
    const { permissions, metrics, logs } = start(world, 0);
    world.rows.delete('gone');
    world.setUser('inactive', { isActive: false });
    world.setUser('repassword', { credentialStamps: new Set(['stamp-2']) });
    permissions.onControl('{"type":"all"}');
    await waitFor(() => connections.slice(0, 3).every((c) => c.revoked));
    await permissions.settled();
    assert.equal(connections[3]!.revoked, false);
    assert.equal(later.revoked, false, 'a token made after the password change stays');
    assert.deepEqual(world.users.userIds().sort(), ['fine', 'repassword']);
    for (const reason of ['deleted', 'inactive', 'credentials_changed']) {
      assert.equal(await count(metrics.revocations, { reason }), 1, reason);
    }
    const lines = logs.entries().filter((entry) => entry.msg === 'access revoked');
    assert.deepEqual(lines.map((line) => [line.user, line.reason, line.level]).sort(), [
      ['gone', 'deleted', 30],
      ['inactive', 'inactive', 30],
      ['repassword', 'credentials_changed', 30],
    ]);
    assert.ok(!logs.lines.some((line) => line.includes('stamp-')), 'no credential in the logs');
    assert.deepEqual(world.forgotten, ['all']);
  });

  it('closes the connections whose session ended, and only those, on one read per batch', async () => {
    const world = createWorld();
    world.setUser('ann');
    world.setUser('bob');
    const loggedOut = world.connect('ann', 'stamp-1', 'session:a1');
    const otherTab = world.connect('ann', 'stamp-1', 'session:a2');
    const token = world.connect('ann');
    const bobs = world.connect('bob', 'stamp-1', 'session:b1');
    const asked: string[][] = [];
    let ended = new Set(['session:a1']);
    world.directory.endedSessions = async (sessions) => {
      asked.push([...sessions].sort());
      if (ended.size === 0) throw new Error('database down');
      return new Set(sessions.filter((session) => ended.has(session)));
    };
    const { permissions, metrics, logs } = start(world, 0);
    permissions.onControl('{"type":"users","ids":["ann","bob"]}');
    await waitFor(() => loggedOut.revoked);
    await permissions.settled();
    assert.deepEqual(asked, [['session:a1', 'session:a2', 'session:b1']]);
    assert.deepEqual(
      [otherTab, token, bobs].map((c) => c.revoked),
      [false, false, false],
    );
    assert.equal(await count(metrics.revocations, { reason: 'session_ended' }), 1);
    const lines = logs.entries().filter((entry) => entry.msg === 'access revoked');
    assert.deepEqual(
      lines.map((line) => [line.user, line.reason]),
      [['ann', 'session_ended']],
    );
    assert.ok(!logs.lines.some((line) => line.includes('session:')), 'no session key logged');
    // A failing session read closes nobody and counts as a failed re-check.
    ended = new Set();
    permissions.onControl('{"type":"users","ids":["ann","bob"]}');
    await waitFor(() => asked.length === 2);
    await permissions.settled();
    assert.deepEqual(
      [otherTab, token, bobs].map((c) => c.revoked),
      [false, false, false],
    );
    assert.equal(await count(metrics.permissionRecheckFailures), 1);
  });

  it('reads nothing for a control message about users not live here', async () => {
    const world = createWorld();
    world.setUser('ann');
    world.connect('ann');
    const { permissions, metrics } = start(world, 0);
    permissions.onControl('{"type":"users","ids":["bob","carol"]}');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await permissions.settled();
    assert.deepEqual(world.reads, []);
    assert.equal(await count(metrics.controlMessages, { outcome: 'applied' }), 1);
    assert.deepEqual(world.forgotten, [['bob', 'carol']], 'their snapshots go all the same');
  });

  it('re-checks the live members of a group, and no query without live users', async () => {
    const world = createWorld(2);
    for (const id of ['a', 'b', 'c', 'd']) {
      world.setUser(id);
      world.connect(id);
    }
    world.groups.set('7', new Set(['b', 'd', 'zed']));
    const { permissions } = start(world, 0);
    permissions.onControl('{"type":"groups","ids":["7"]}');
    await waitFor(() => world.reads.length === 1);
    await permissions.settled();
    assert.deepEqual(world.reads, [['b', 'd']]);
    assert.equal(world.memberReads.length, 2, 'members looked up among live users, in batches');
    assert.deepEqual(world.memberReads.flatMap((read) => read.users).sort(), ['a', 'b', 'c', 'd']);

    const empty = createWorld();
    const quiet = start(empty, 0);
    quiet.permissions.onControl('{"type":"groups","ids":["7"]}');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await quiet.permissions.settled();
    assert.deepEqual(empty.memberReads, []);
    assert.deepEqual(empty.reads, []);
  });

  it('coalesces a burst of control messages into one read', async () => {
    const world = createWorld();
    for (const id of ['a', 'b', 'c']) {
      world.setUser(id);
      world.connect(id);
    }
    const { permissions } = start(world, 0);
    for (const id of ['a', 'b', 'a', 'c', 'b']) {
      permissions.onControl(JSON.stringify({ type: 'users', ids: [id] }));
    }
    await waitFor(() => world.reads.length === 1);
    await permissions.settled();
    assert.deepEqual(
      world.reads.map((ids) => ids.sort()),
      [['a', 'b', 'c']],
    );
  });

  it('drops bad control messages, counted, logged once, and changes nothing', async () => {
    const world = createWorld();
    world.setUser('ann');
    const ann = world.connect('ann');
    const { permissions, metrics, logs } = start(world, 0);
    for (let i = 0; i < 50; i++) permissions.onControl('{"type": "users", "ids": "ann"');
    permissions.onControl('{"type": "sessions"}');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await count(metrics.controlMessages, { outcome: 'malformed' }), 50);
    assert.equal(await count(metrics.controlMessages, { outcome: 'unknown' }), 1);
    const dropped = logs.entries().filter((entry) => entry.msg === 'control message dropped');
    assert.equal(dropped.length, 2, 'one line per kind per interval');
    assert.deepEqual(world.reads, []);
    assert.equal(ann.revoked, false);
  });

  it('keeps connections when the directory cannot answer, and applies the next answer', async () => {
    const world = createWorld();
    world.setUser('ann');
    const ann = world.connect('ann');
    const { permissions, metrics } = start(world, 0);
    world.fail(true);
    world.rows.delete('ann');
    permissions.onControl('{"type":"users","ids":["ann"]}');
    await waitFor(async () => (await count(metrics.permissionRecheckFailures)) === 1);
    assert.equal(ann.revoked, false, 'a database outage revokes nobody');
    world.fail(false);
    permissions.onControl('{"type":"users","ids":["ann"]}');
    await waitFor(() => ann.revoked);
  });

  it('goes on past a fault applying one user: the others are applied, later rounds run', async () => {
    const world = createWorld();
    world.setUser('ann');
    world.setUser('bob');
    const ann = world.connect('ann');
    const bob = world.connect('bob');
    ann.updateContentTypes = () => {
      throw new Error('a fault in the router');
    };
    const { metrics, logs } = start(world, 0.1);
    world.setUser('bob', { contentTypeIds: new Set([1, 2]) });
    await waitFor(() => world.reads.length >= 3, 5000);
    assert.deepEqual([...bob.updates[0]!].sort(), [1, 2], 'bob, after ann in the batch');
    assert.ok((await count(metrics.permissionRecheckFailures)) >= 3, 'each fault counted');
    const faults = logs.entries().filter((entry) => String(entry.msg).includes('unexpectedly'));
    assert.equal(faults.length, 1, 'logged once per interval');
    assert.equal(faults[0]!.user, 'ann');
  });

  it('re-checks a connection that went live after a control message named its user', async () => {
    const world = createWorld();
    world.setUser('ann');
    world.setUser('bob');
    const { permissions } = start(world, 0);
    const before = permissions.mark();
    // Named while authenticating: not live yet, so the message itself re-checks nobody.
    permissions.onControl('{"type":"users","ids":["ann"]}');
    await permissions.settled();
    assert.deepEqual(world.reads, []);
    world.setUser('ann', { isActive: false });
    const ann = world.connect('ann');
    permissions.joined('ann', before);
    world.connect('bob');
    permissions.joined('bob', before);
    await waitFor(() => ann.revoked);
    await permissions.settled();
    assert.deepEqual(world.reads, [['ann']], 'bob was not named: no read for him');
    const after = permissions.mark();
    permissions.joined('ann', after);
    permissions.onControl('{"type":"all"}');
    world.connect('carol');
    permissions.joined('carol', after);
    await permissions.settled();
    const last = (world.reads as string[][]).at(-1) ?? [];
    assert.ok(last.includes('carol'), 'everyone named: anyone joining is re-checked');
  });
});
