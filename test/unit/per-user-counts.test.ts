/** --max-connections-per-user's bookkeeping: counts per user, a limit, and no entry left behind. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerUserCounts } from '../../src/server/per-user.js';

describe('per-user counts', () => {
  it('admits up to the limit, then refuses until a connection is given back', () => {
    const counts = new PerUserCounts(2);
    assert.equal(counts.tryAdd('ann'), true);
    assert.equal(counts.tryAdd('ann'), true);
    assert.equal(counts.tryAdd('ann'), false);
    assert.equal(counts.countOf('ann'), 2, 'a refusal counts nothing');
    assert.equal(counts.tryAdd('bob'), true, 'each user has a limit of their own');
    counts.remove('ann');
    assert.equal(counts.tryAdd('ann'), true);
  });

  it('has no limit at 0', () => {
    const counts = new PerUserCounts(0);
    for (let i = 0; i < 1000; i++) assert.equal(counts.tryAdd('ann'), true);
    assert.equal(counts.countOf('ann'), 1000);
  });

  it('forgets a user whose last connection is given back, even given back too often', () => {
    const counts = new PerUserCounts(1);
    counts.tryAdd('ann');
    counts.remove('ann');
    counts.remove('ann');
    assert.equal(counts.countOf('ann'), 0);
    assert.equal(counts.tryAdd('ann'), true);
  });
});
