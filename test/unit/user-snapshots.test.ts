/** Per-user snapshots: one read per user per interval, dropped on forget, never stale after it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createUserSnapshots } from '../../src/auth/user-snapshots.js';
import type { DjangoUser } from '../../src/django/store.js';

function user(pk: string, password = 'p1'): DjangoUser {
  return {
    pk,
    lookup: BigInt(pk),
    username: `user${pk}`,
    password,
    email: null,
    lastLogin: null,
    isActive: true,
    isSuperuser: false,
  };
}

/** A store over a table the test edits, counting its queries; reads wait for `gate` if set. */
function createStore() {
  const table = new Map<string, DjangoUser>([
    ['1', user('1')],
    ['2', user('2')],
  ]);
  const calls = { findUser: 0, permissions: 0, many: 0 };
  let gate: Promise<void> | undefined;
  return {
    table,
    calls,
    hold(until: Promise<void>) {
      gate = until;
    },
    store: {
      async findUser(lookup: unknown) {
        calls.findUser++;
        // The row as it was when the query ran; the answer arrives when the gate opens.
        const row = table.get(String(lookup)) ?? null;
        await gate;
        return row;
      },
      async findUsersByPk(pks: readonly string[]) {
        calls.many++;
        return pks.flatMap((pk) => (table.has(pk) ? [table.get(pk)!] : []));
      },
      contentTypeIds: async (_user?: DjangoUser) => {
        calls.permissions++;
        return new Set([7]);
      },
      async contentTypeIdsOf(users: readonly DjangoUser[]) {
        calls.permissions++;
        return new Map(users.map((u) => [u.pk, new Set([7])]));
      },
    },
  };
}

describe('user snapshots', () => {
  it('shares one permission set between users who have the same, and retries a failed read', async () => {
    const world = createStore();
    const snapshots = createUserSnapshots(world.store, 60_000, () => 0);
    const [one, two] = [(await snapshots.read(1n))!, (await snapshots.read(2n))!];
    assert.equal(await one.contentTypeIds(), await two.contentTypeIds(), 'one set for both');
    const working = world.store.contentTypeIds;
    world.table.set('3', user('3'));
    world.store.contentTypeIds = () => Promise.reject(new Error('database down'));
    const three = (await snapshots.read(3n))!;
    await assert.rejects(three.contentTypeIds(), /database down/);
    world.store.contentTypeIds = working;
    assert.deepEqual([...(await three.contentTypeIds())], [7], 'the failure was not kept');
    snapshots.close();
  });

  it('reads a user and their permissions once per interval, however many connections', async () => {
    const world = createStore();
    let now = 0;
    const snapshots = createUserSnapshots(world.store, 60_000, () => now);
    const first = await snapshots.read(1n);
    assert.deepEqual([...(await first!.contentTypeIds())], [7]);
    for (let i = 0; i < 10; i++) {
      const cached = snapshots.cached(1n);
      assert.equal(cached, first);
      await cached!.contentTypeIds();
    }
    assert.deepEqual(world.calls, { findUser: 1, permissions: 1, many: 0 });
    now = 60_001;
    assert.equal(snapshots.cached(1n), undefined, 'expired with the interval');
  });

  it('shares one read between overlapping lookups of one user', async () => {
    const world = createStore();
    let open!: () => void;
    world.hold(new Promise((resolve) => (open = resolve)));
    const snapshots = createUserSnapshots(world.store, 60_000);
    const reads = Array.from({ length: 20 }, () => snapshots.read(1n));
    open();
    const results = await Promise.all(reads);
    assert.ok(results.every((result) => result === results[0]));
    assert.equal(world.calls.findUser, 1);
  });

  it('forgets on request, and never caches a read that began before the forget', async () => {
    const world = createStore();
    const snapshots = createUserSnapshots(world.store, 60_000);
    await snapshots.read(1n);
    snapshots.forget(['1']);
    assert.equal(snapshots.cached(1n), undefined);

    let open!: () => void;
    world.hold(new Promise((resolve) => (open = resolve)));
    const before = snapshots.read(1n);
    snapshots.forget(['1']); // e.g. a control message: the row may be changing now
    world.table.set('1', user('1', 'p2'));
    const after = snapshots.read(1n);
    open();
    assert.equal((await before)!.user.password, 'p1');
    assert.equal((await after)!.user.password, 'p2', 'a lookup after the forget reads again');
    assert.equal(world.calls.findUser, 3);
    assert.equal(snapshots.cached(1n)?.user.password, 'p2', 'only the later read is kept');
    await snapshots.read(2n);
    snapshots.forget('all');
    assert.equal(snapshots.cached(2n), undefined);
  });

  it('refreshes on a batched re-read the snapshots it has, makes none, never of the missing', async () => {
    const world = createStore();
    const snapshots = createUserSnapshots(world.store, 60_000);
    await snapshots.read(1n);
    world.table.set('1', user('1', 'p2'));
    const read = await snapshots.readMany(['1', '2', '3']);
    assert.deepEqual([...read.keys()], ['1', '2']);
    assert.equal(snapshots.cached(1n)?.user.password, 'p2', 'the snapshot it had, refreshed');
    assert.deepEqual([...(await snapshots.cached(1n)!.contentTypeIds())], [7]);
    assert.equal(snapshots.cached(2n), undefined, 'a live user does not keep one for ever');
    assert.deepEqual(world.calls, { findUser: 1, permissions: 1, many: 1 });
    assert.equal(await snapshots.read(3n), null);
    assert.equal(snapshots.cached(3n), undefined);
    snapshots.close();
  });

  it('keeps nothing with an interval of 0', async () => {
    const world = createStore();
    const snapshots = createUserSnapshots(world.store, 0);
    await snapshots.read(1n);
    await snapshots.readMany(['2']);
    assert.equal(snapshots.cached(1n), undefined);
    assert.equal(snapshots.cached(2n), undefined);
  });
});
