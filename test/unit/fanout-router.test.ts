/** The content type index behind fan-out: exactly the allowed connections, whatever happened before. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createRouter, type Router } from '../../src/router.js';

function recipients<C>(router: Router<C>, contentTypeId: number): C[] {
  const out: C[] = [];
  const count = router.forEachRecipient(contentTypeId, (connection) => out.push(connection));
  assert.equal(count, out.length, 'the returned count matches the visits');
  assert.equal(router.recipientCount(contentTypeId), out.length);
  return out;
}

describe('router', () => {
  it('returns the connections indexed under a content type, and only those', () => {
    const router = createRouter<string>();
    router.add('a', [1, 2]);
    router.add('b', [2]);
    router.add('c', []);
    assert.deepEqual(recipients(router, 1), ['a']);
    assert.deepEqual(recipients(router, 2).sort(), ['a', 'b']);
    assert.deepEqual(recipients(router, 3), []);
    assert.equal(router.connectionCount, 3);
  });

  it('forgets a connection on remove, and an emptied content type altogether', () => {
    const router = createRouter<string>();
    router.add('a', [1, 2]);
    router.add('b', [2]);
    router.remove('a');
    assert.deepEqual(recipients(router, 1), []);
    assert.deepEqual(recipients(router, 2), ['b']);
    assert.equal(router.connectionCount, 1);
    router.remove('b');
    assert.deepEqual(recipients(router, 2), []);
    assert.equal(router.connectionCount, 0);
    router.remove('b');
    assert.equal(router.connectionCount, 0, 'removing twice is harmless');
  });

  it('never lets a connection inherit the permissions of the one whose slot it reuses', () => {
    const router = createRouter<string>();
    router.add('admin', [1, 2, 3, 4]);
    // Every bit of the slot is cleared, whichever ids the next connection there is added with.
    router.remove('admin');
    router.add('reader', [4]);
    assert.deepEqual(recipients(router, 1), []);
    assert.deepEqual(recipients(router, 2), []);
    assert.deepEqual(recipients(router, 4), ['reader']);
  });

  it('visits every recipient across word boundaries (slots 0, 31, 32, 63, 64...)', () => {
    const router = createRouter<number>();
    for (let i = 0; i < 200; i++) router.add(i, i % 3 === 0 ? [5, 6] : [6]);
    assert.deepEqual(
      recipients(router, 5),
      [...Array(200).keys()].filter((i) => i % 3 === 0),
    );
    assert.equal(recipients(router, 6).length, 200);
  });

  it('does not visit a connection removed by an earlier visit of the same event', () => {
    const router = createRouter<number>();
    for (let i = 0; i < 40; i++) router.add(i, [9]);
    const visited: number[] = [];
    router.forEachRecipient(9, (connection) => {
      visited.push(connection);
      if (connection === 3) router.remove(35);
    });
    assert.equal(visited.length, 39);
    assert.ok(!visited.includes(35));
  });

  it('updates a connection in place: kept content types stay, others come and go', () => {
    const router = createRouter<string>();
    router.add('a', [1, 2]);
    router.add('b', [2, 3]);
    assert.equal(router.update('a', new Set([2, 4])), true);
    assert.deepEqual(recipients(router, 1), [], 'an emptied content type is gone');
    assert.deepEqual(recipients(router, 2).sort(), ['a', 'b']);
    assert.deepEqual(recipients(router, 4), ['a']);
    assert.equal(router.update('a', new Set([4, 2])), false, 'the same set changes nothing');
    assert.equal(router.update('z', new Set([1])), false, 'unregistered: nothing to change');
    assert.deepEqual(recipients(router, 1), []);
    assert.equal(router.connectionCount, 2);
    router.remove('a');
    router.add('c', []);
    assert.deepEqual(recipients(router, 4), [], 'the slot reused by c inherits nothing');
  });

  it('agrees with a plain map of sets under any sequence of adds, updates and removes', () => {
    const ids = fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 8 });
    const operation = fc.oneof(
      fc.record({ add: fc.integer({ min: 0, max: 99 }), ids }),
      fc.record({ update: fc.integer({ min: 0, max: 99 }), ids }),
      fc.record({ remove: fc.integer({ min: 0, max: 99 }) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 400 }), (operations) => {
        const router = createRouter<number>();
        const model = new Map<number, Set<number>>();
        for (const op of operations) {
          if ('add' in op) {
            if (model.has(op.add)) continue; // a connection registers once
            router.add(op.add, op.ids);
            model.set(op.add, new Set(op.ids));
          } else if ('update' in op) {
            const before = model.get(op.update);
            const after = new Set(op.ids);
            const changed =
              before !== undefined &&
              (before.size !== after.size || [...after].some((id) => !before.has(id)));
            assert.equal(router.update(op.update, after), changed);
            if (before !== undefined) model.set(op.update, after);
          } else {
            router.remove(op.remove);
            model.delete(op.remove);
          }
        }
        assert.equal(router.connectionCount, model.size);
        for (let id = 1; id <= 8; id++) {
          const want = [...model].filter(([, ids]) => ids.has(id)).map(([c]) => c);
          assert.deepEqual(
            recipients(router, id).sort((a, b) => a - b),
            want.sort((a, b) => a - b),
          );
        }
      }),
      { numRuns: 300 },
    );
  });
});
