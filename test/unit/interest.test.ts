/**
 * Interest routing's bookkeeping: the router tells when a content type gains its first recipient
 * or loses its last, and the interest over both routers subscribes at once and unsubscribes only
 * after the hold.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { createRouter } from '../../src/router.js';
import { createInterest } from '../../src/server/interest.js';

describe('interest', () => {
  it('is told of a content type when its first connection comes and its last goes', () => {
    const events: string[] = [];
    const router = createRouter<string>({
      gained: (id) => events.push(`+${id}`),
      lost: (id) => events.push(`-${id}`),
    });
    router.add('a', [1, 2]);
    router.add('b', [2, 3]);
    router.remove('a');
    router.remove('b');
    assert.deepEqual(events, ['+1', '+2', '+3', '-1', '-2', '-3']);
  });

  it('subscribes at once, unsubscribes after the hold, and not when a connection comes back', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const told: number[][] = [];
      const interest = createInterest((ids) => told.push([...ids].sort()), 30_000);
      const guide = createRouter<string>(interest.listener());
      const v1 = createRouter<string>(interest.listener());
      guide.add('a', [1]);
      assert.deepEqual(told, [[1]]);
      v1.add('b', [1, 2]);
      assert.deepEqual(told, [[1], [1, 2]]);
      guide.remove('a');
      v1.remove('b');
      mock.timers.tick(29_000);
      // Back within the hold: nothing to do, and the pending drop is cancelled.
      v1.add('c', [2]);
      mock.timers.tick(2000);
      assert.deepEqual(told, [[1], [1, 2], [2]]);
      assert.deepEqual([...interest.current()], [2]);
      v1.remove('c');
      mock.timers.tick(30_000);
      assert.deepEqual(told, [[1], [1, 2], [2], []]);
      interest.close();
    } finally {
      mock.timers.reset();
    }
  });
});
