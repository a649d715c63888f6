/** The live users' bookkeeping: a limit per user, the connections of each, no entry left behind. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LiveUsers } from '../../src/server/live-users.js';

describe('live users', () => {
  it('admits up to the limit, then refuses until a connection is given back', () => {
    const users = new LiveUsers<string>(2);
    assert.equal(users.tryAdd('ann', 'a1'), true);
    assert.equal(users.tryAdd('ann', 'a2'), true);
    assert.equal(users.tryAdd('ann', 'a3'), false);
    assert.equal(users.countOf('ann'), 2, 'a refusal counts nothing');
    assert.deepEqual(users.connectionsOf('ann'), ['a1', 'a2']);
    assert.equal(users.tryAdd('bob', 'b1'), true, 'each user has a limit of their own');
    users.remove('ann', 'a1');
    assert.equal(users.tryAdd('ann', 'a3'), true);
    assert.deepEqual(users.connectionsOf('ann').sort(), ['a2', 'a3']);
    assert.deepEqual(users.userIds().sort(), ['ann', 'bob']);
  });

  it('has no limit at 0', () => {
    const users = new LiveUsers<number>(0);
    for (let i = 0; i < 1000; i++) assert.equal(users.tryAdd('ann', i), true);
    assert.equal(users.countOf('ann'), 1000);
  });

  it('forgets a user whose last connection is given back, even given back twice', () => {
    const users = new LiveUsers<string>(1);
    users.tryAdd('ann', 'a1');
    users.remove('ann', 'a1');
    users.remove('ann', 'a1');
    users.remove('ann', 'other');
    assert.equal(users.countOf('ann'), 0);
    assert.equal(users.has('ann'), false);
    assert.equal(users.size, 0);
    assert.equal(users.tryAdd('ann', 'a2'), true);
  });

  it('leaves the others when one of several connections goes, down to none', () => {
    const users = new LiveUsers<string>(0);
    for (const c of ['a1', 'a2', 'a3']) users.tryAdd('ann', c);
    users.remove('ann', 'a2');
    assert.deepEqual(users.connectionsOf('ann'), ['a1', 'a3']);
    users.remove('ann', 'a1');
    users.remove('ann', 'a3');
    assert.equal(users.has('ann'), false);
    assert.deepEqual(users.connectionsOf('ann'), []);
  });
});
