/**
 * Scrapes share collections: concurrent ones wait for the same one, and its text answers the
 * next second of scrapes. Observed by counting calls into the registry itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMetrics } from '../../src/metrics.js';

/** Metrics whose registry counts its collections (and fails the next one on request). */
function countedMetrics() {
  const metrics = createMetrics();
  const collect = metrics.registry.metrics.bind(metrics.registry);
  const state = { collections: 0, failNext: false };
  metrics.registry.metrics = async () => {
    state.collections++;
    if (state.failNext) {
      state.failNext = false;
      throw new Error('collection failed');
    }
    return collect();
  };
  return { metrics, state };
}

describe('/metrics collections', () => {
  it('serves concurrent scrapes from one collection, then reuses it for a second', async () => {
    const { metrics, state } = countedMetrics();
    const texts = await Promise.all(Array.from({ length: 100 }, () => metrics.scrape()));
    assert.equal(state.collections, 1);
    assert.equal(new Set(texts).size, 1);
    assert.match(texts[0]!, /^# HELP sidecast_/m);

    metrics.connections.inc();
    assert.equal(await metrics.scrape(), texts[0], 'a scrape within the second gets the same text');
    assert.equal(state.collections, 1);

    await sleep(1100);
    const fresh = await metrics.scrape();
    assert.equal(state.collections, 2);
    assert.match(fresh, /^sidecast_connections 1$/m);
  });

  it('keeps no failed collection: the scrapes waiting for it fail, the next one collects', async () => {
    const { metrics, state } = countedMetrics();
    state.failNext = true;
    const results = await Promise.allSettled([metrics.scrape(), metrics.scrape()]);
    assert.deepEqual(
      results.map((result) => result.status),
      ['rejected', 'rejected'],
    );
    assert.equal(state.collections, 1);
    assert.match(await metrics.scrape(), /^# HELP sidecast_/m);
    assert.equal(state.collections, 2);
  });
});
