/**
 * The log limiter: a line per key per interval, the first at once, and the count of what was
 * held back in the line after. The clock is node:test's mock, so intervals pass without waiting.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { createLogger, createLogLimiter, LOG_INTERVAL_MS } from '../../src/log.js';
import { captureLogs } from '../support/observe.js';

describe('createLogLimiter', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  const lines = (logs: ReturnType<typeof captureLogs>) =>
    logs.entries().map(({ msg, reason, n, suppressed }) => ({ msg, reason, n, suppressed }));

  it('logs the first occurrence at once and the count of the rest one interval later', () => {
    const logs = captureLogs();
    const limiter = createLogLimiter(logs.logger);
    for (let n = 1; n <= 1000; n++) {
      limiter.log('warn', 'not JSON', { reason: 'not JSON', n }, 'event dropped');
    }
    assert.deepEqual(lines(logs), [
      { msg: 'event dropped', reason: 'not JSON', n: 1, suppressed: undefined },
    ]);
    mock.timers.tick(LOG_INTERVAL_MS - 1);
    assert.equal(logs.lines.length, 1, 'nothing more before the interval has passed');
    mock.timers.tick(1);
    assert.deepEqual(lines(logs)[1], {
      msg: 'event dropped',
      reason: 'not JSON',
      n: 1000,
      suppressed: 999,
    });
    mock.timers.tick(5 * LOG_INTERVAL_MS);
    assert.equal(logs.lines.length, 2, 'a flood that stopped is reported once');
    limiter.log('warn', 'not JSON', { reason: 'not JSON', n: 1001 }, 'event dropped');
    assert.equal(logs.lines.length, 3, 'and the next occurrence, long after, is logged at once');
  });

  it('gives a steady flood one line per interval', () => {
    const logs = captureLogs();
    const limiter = createLogLimiter(logs.logger);
    // 100 occurrences a second for a minute.
    for (let ms = 0; ms < 60_000; ms += 10) {
      limiter.log('info', 'failed', { n: ms }, 'authentication refused');
      mock.timers.tick(10);
    }
    assert.ok(logs.lines.length <= 7, `${logs.lines.length} lines in a minute`);
    mock.timers.tick(LOG_INTERVAL_MS);
    // A line is one occurrence, or a summary of `suppressed` of them.
    const total = logs
      .entries()
      .reduce((sum, entry) => sum + ((entry.suppressed as number | undefined) ?? 1), 0);
    assert.equal(total, 6000, 'every occurrence is either logged or counted in a later line');
  });

  it('limits each key (and level) on its own', () => {
    const logs = captureLogs();
    const limiter = createLogLimiter(logs.logger);
    for (let i = 0; i < 10; i++) {
      limiter.log('warn', 'not JSON', { reason: 'not JSON' }, 'event dropped');
      limiter.log('warn', 'not a JSON object', { reason: 'not a JSON object' }, 'event dropped');
      limiter.log('info', 'not JSON', { reason: 'info' }, 'event dropped');
    }
    assert.deepEqual(
      logs.entries().map((entry) => [entry.level, entry.reason]),
      [
        [40, 'not JSON'],
        [40, 'not a JSON object'],
        [30, 'info'],
      ],
    );
  });

  it('ignores lines below the logger’s level without counting them', () => {
    const logs = captureLogs();
    logs.logger.level = 'info';
    const limiter = createLogLimiter(logs.logger);
    for (let i = 0; i < 5; i++) limiter.log('debug', 'max_connections', {}, 'upgrade refused');
    mock.timers.tick(LOG_INTERVAL_MS);
    assert.equal(logs.lines.length, 0);
  });

  it('tracks a bounded number of keys, however many distinct ones arrive', () => {
    const logs = captureLogs();
    const limiter = createLogLimiter(logs.logger);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10_000; i++) limiter.log('info', `key ${i}`, {}, 'distinct');
    }
    mock.timers.tick(LOG_INTERVAL_MS);
    // 64 keys and the shared one: a line each, then a summary each.
    assert.ok(logs.lines.length <= 130, `${logs.lines.length} lines`);
  });

  it('leaves no timer that would keep the process alive', () => {
    mock.timers.reset();
    const limiter = createLogLimiter(createLogger('silent'));
    limiter.log('error', 'x', {}, 'silent logger: nothing to do');
    const logs = captureLogs();
    const live = createLogLimiter(logs.logger);
    live.log('warn', 'x', {}, 'first');
    live.log('warn', 'x', {}, 'second');
    // With a real clock the summary timer is pending; it must be unref'd (else the test hangs
    // for LOG_INTERVAL_MS, which the runner's --test-timeout would not catch before it fires).
    assert.equal(process.getActiveResourcesInfo().includes('Timeout'), false);
  });
});
