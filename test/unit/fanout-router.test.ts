/** The content type index behind fan-out: recipients per content type, nothing more. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRouter } from '../../src/router.js';

describe('router', () => {
  it('returns the connections indexed under a content type, and only those', () => {
    const router = createRouter<string>();
    router.add('a', [1, 2]);
    router.add('b', [2]);
    router.add('c', []);
    assert.deepEqual([...router.recipients(1)], ['a']);
    assert.deepEqual([...router.recipients(2)].sort(), ['a', 'b']);
    assert.equal(router.recipients(3).size, 0);
    assert.equal(router.connectionCount, 3);
  });

  it('forgets a connection on remove, and an emptied content type altogether', () => {
    const router = createRouter<string>();
    router.add('a', [1, 2]);
    router.add('b', [2]);
    router.remove('a', [1, 2]);
    assert.equal(router.recipients(1).size, 0);
    assert.deepEqual([...router.recipients(2)], ['b']);
    assert.equal(router.connectionCount, 1);
    router.remove('b', [2]);
    assert.equal(router.recipients(2).size, 0);
    assert.equal(router.connectionCount, 0);
    // Adding again after emptying works on a fresh set.
    router.add('b', [2]);
    assert.deepEqual([...router.recipients(2)], ['b']);
  });

  it('keeps insertion order, so earlier connections are written first', () => {
    const router = createRouter<number>();
    for (let i = 0; i < 100; i++) router.add(i, [5]);
    assert.deepEqual([...router.recipients(5)], [...Array(100).keys()]);
  });
});
