import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, DEFAULT_BACKOFF, resolveBackoff } from '../../src/client/backoff.js';

const almostOne = () => 1 - Number.EPSILON;

describe('client backoff', () => {
  it('draws each delay uniformly below a ceiling that grows by the factor', () => {
    const options = { initialMs: 100, maxMs: 100_000, factor: 3 };
    const ceilings = [0, 1, 2, 3].map((attempt) => backoffDelay(attempt, options, almostOne));
    assert.deepEqual(ceilings, [99, 299, 899, 2699]);
    assert.equal(
      backoffDelay(3, options, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(2, options, () => 0.5),
      450,
    );
  });

  it('stops growing at maxMs, even after very many failures', () => {
    const options = { initialMs: 500, maxMs: 30_000, factor: 2 };
    assert.equal(backoffDelay(6, options, almostOne), 29_999);
    assert.equal(backoffDelay(10_000, options, almostOne), 29_999);
    assert.equal(
      backoffDelay(10_000, options, () => 0.5),
      15_000,
    );
  });

  it('uses Math.random by default and stays within bounds', () => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const delay = backoffDelay(attempt, DEFAULT_BACKOFF);
      assert.ok(Number.isInteger(delay) && delay >= 0 && delay < DEFAULT_BACKOFF.maxMs, `${delay}`);
    }
  });

  it('fills in documented defaults and refuses bounds that would spin or never retry', () => {
    assert.deepEqual(resolveBackoff(), { initialMs: 500, maxMs: 30_000, factor: 2 });
    assert.deepEqual(resolveBackoff({ maxMs: 5000 }), { initialMs: 500, maxMs: 5000, factor: 2 });
    for (const bad of [
      { initialMs: 0 },
      { initialMs: -1 },
      { initialMs: 1000, maxMs: 10 },
      { factor: 0.5 },
      { maxMs: Infinity },
      { initialMs: Number.NaN },
    ]) {
      assert.throws(() => resolveBackoff(bad), RangeError, JSON.stringify(bad));
    }
  });
});
