/**
 * The fan-out path without sockets: an event is checked and framed once, the same frame object
 * goes to exactly the sinks indexed under its content type, synchronously, and broken events are
 * dropped and counted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { createRouter } from '../../src/router.js';
import { createFanout, type FrameSink } from '../../src/server/fanout.js';

class RecordingSink implements FrameSink {
  readonly frames: Buffer[] = [];
  accept = true;
  write(frame: Buffer): boolean {
    if (!this.accept) return false;
    this.frames.push(frame);
    return true;
  }
}

function setup() {
  const router = createRouter<RecordingSink>();
  const metrics = createMetrics();
  const dispatch = createFanout(router, metrics, createLogger('silent'), {
    maxEventBytes: 1024 * 1024,
  });
  return { router, metrics, dispatch };
}

async function counter(metrics: ReturnType<typeof createMetrics>, name: string): Promise<string> {
  return metrics.registry.getSingleMetricAsString(name);
}

/** Payload of a single unmasked text frame, checking the header on the way. */
function payloadOf(frame: Buffer): string {
  assert.equal(frame[0], 0x81, 'FIN + text opcode');
  let length = frame[1]!;
  let offset = 2;
  assert.equal(length & 0x80, 0, 'server frames are not masked');
  if (length === 126) {
    length = frame.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    length = Number(frame.readBigUInt64BE(2));
    offset = 10;
  }
  assert.equal(frame.length, offset + length, 'exactly one frame');
  return frame.subarray(offset).toString('utf8');
}

describe('fan-out dispatch', () => {
  it('frames an event once and hands the same frame to every allowed sink', () => {
    const { router, dispatch } = setup();
    const books = [new RecordingSink(), new RecordingSink()];
    const authors = new RecordingSink();
    const both = new RecordingSink();
    for (const sink of books) router.add(sink, [2]);
    router.add(authors, [3]);
    router.add(both, [2, 3]);
    const payload = '{"model": "book", "object": "Caf\\u00e9 \u00e9t\u00e9", "content_type_id": 2}';
    assert.equal(dispatch(payload), 3);
    const frame = books[0]!.frames[0]!;
    assert.equal(payloadOf(frame), payload);
    assert.equal(books[1]!.frames[0], frame, 'one frame object, not a copy per recipient');
    assert.equal(both.frames[0], frame);
    assert.deepEqual(authors.frames, []);
  });

  it('returns synchronously: nothing is awaited per recipient', () => {
    const { router, dispatch } = setup();
    const sinks = Array.from({ length: 1000 }, () => new RecordingSink());
    for (const sink of sinks) router.add(sink, [7]);
    const delivered = dispatch('{"content_type_id": 7}');
    assert.equal(typeof delivered, 'number');
    assert.equal(delivered, 1000);
    assert.ok(sinks.every((sink) => sink.frames.length === 1));
  });

  it('counts only the sinks that took the frame', async () => {
    const { router, metrics, dispatch } = setup();
    const taking = new RecordingSink();
    const refusing = new RecordingSink();
    refusing.accept = false;
    router.add(taking, [4]);
    router.add(refusing, [4]);
    assert.equal(dispatch('{"content_type_id": 4}'), 1);
    assert.match(await counter(metrics, 'sidecast_events_delivered_total'), /total 1$/m);
  });

  it('drops events it cannot route and counts them', async () => {
    const { router, metrics, dispatch } = setup();
    const sink = new RecordingSink();
    router.add(sink, [1]);
    for (const broken of ['nope', '[1]', '{"content_type_id": "1"}', '{"content_type_id": null}'])
      assert.equal(dispatch(broken), 0);
    assert.equal(dispatch('{"content_type_id": 99}'), 0, 'nobody may see content type 99');
    assert.deepEqual(sink.frames, []);
    assert.match(
      await counter(metrics, 'sidecast_events_dropped_total'),
      /reason="invalid_event"} 4/,
    );
    assert.match(await counter(metrics, 'sidecast_events_received_total'), /total 5$/m);
  });
});
