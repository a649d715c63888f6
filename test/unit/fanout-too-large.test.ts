/**
 * Events over --max-event-bytes that arrive on the bus (anything can publish on Redis) are dropped
 * by fan-out, by their UTF-8 size, logged and counted, before anyone is sent a byte.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics } from '../../src/metrics.js';
import { createRouter } from '../../src/router.js';
import { createFanout, type FrameSink } from '../../src/server/fanout.js';
import { captureLogs } from '../support/observe.js';

const LIMIT = 4096;

/** An event of exactly `bytes` bytes of UTF-8, padded with `char`. */
function eventOf(bytes: number, char: string): string {
  const room = bytes - Buffer.byteLength(JSON.stringify({ content_type_id: 3, pad: '' }));
  const width = Buffer.byteLength(char);
  const pad = char.repeat(Math.floor(room / width)) + 'a'.repeat(room % width);
  const payload = JSON.stringify({ content_type_id: 3, pad });
  assert.equal(Buffer.byteLength(payload), bytes);
  return payload;
}

describe('fan-out of events over --max-event-bytes', () => {
  it('delivers events up to the limit and drops larger ones, counting and logging each', async () => {
    const router = createRouter<FrameSink>();
    const metrics = createMetrics();
    const logs = captureLogs();
    const dispatch = createFanout(router, metrics, logs.logger, { maxEventBytes: LIMIT });
    const frames: Buffer[] = [];
    router.add({ write: (frame) => frames.push(frame) > 0 }, [3]);

    // Multi-byte characters put these where the string length alone cannot tell.
    const fits = [
      eventOf(LIMIT, 'a'),
      eventOf(LIMIT, 'é'),
      eventOf(LIMIT, '€'),
      eventOf(LIMIT, '😀'),
    ];
    const over = [eventOf(LIMIT + 1, 'a'), eventOf(LIMIT + 1, '€'), eventOf(LIMIT * 50, 'a')];
    for (const payload of fits) assert.equal(dispatch(payload), 1, `${payload.length} characters`);
    for (const payload of over) assert.equal(dispatch(payload), 0, `${payload.length} characters`);
    assert.equal(frames.length, fits.length);

    const dropped = await metrics.registry.getSingleMetricAsString('sidecast_events_dropped_total');
    assert.match(dropped, /reason="too_large"} 3$/m);
    const lines = logs.entries().filter((entry) => entry.msg === 'event dropped');
    // Anyone may publish on Redis, so the log samples the drops (one line per reason per interval)
    // while the metric above counts every one.
    assert.equal(lines.length, 1, 'the first drop is logged, the rest are counted');
    for (const line of lines) {
      assert.equal(line.reason, 'too large');
      assert.equal(line.limit, LIMIT);
      assert.ok(Number(line.atLeastBytes) > LIMIT);
    }
  });
});
