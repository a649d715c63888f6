/**
 * Protocol v1 without sockets: which first messages are read (and which refused), what `since`
 * becomes, the exact envelope and welcome texts, and fan-out building each protocol's frame once
 * per event, only for a router that has recipients.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { createRouter } from '../../src/router.js';
import { eventEnvelope, welcomeMessage } from '../../src/server/envelope.js';
import { createFanout, type FrameSink } from '../../src/server/fanout.js';
import { createLivePositions } from '../../src/server/positions.js';
import { readV1FirstMessage } from '../../src/server/protocol-v1.js';

class RecordingSink implements FrameSink {
  readonly frames: Buffer[] = [];
  readonly offsets: (string | undefined)[] = [];
  write(frame: Buffer, offset?: string): boolean {
    this.frames.push(frame);
    this.offsets.push(offset);
    return true;
  }
}

/** The text of a small unmasked text frame (under 126 bytes). */
function textOf(frame: Buffer): string {
  assert.equal(frame[0], 0x81);
  return frame.subarray(2).toString('utf8');
}

describe('protocol v1 first message', () => {
  it('reads the token, and since when it is a position', () => {
    assert.deepEqual(readV1FirstMessage('{"token": "t"}'), { token: 't' });
    assert.deepEqual(
      readV1FirstMessage('{"token": "t", "since": {"epoch": "e", "offset": "1-0"}, "x": [1]}'),
      { token: 't', since: { epoch: 'e', offset: '1-0' } },
    );
  });

  it('keeps a since that is no position as null: resumed from nowhere, not refused', () => {
    for (const since of [
      '"e"',
      '1',
      'null',
      '[]',
      '{}',
      '{"epoch": "e"}',
      '{"epoch": 1, "offset": "1"}',
    ])
      assert.deepEqual(readV1FirstMessage(`{"token": "t", "since": ${since}}`), {
        token: 't',
        since: null,
      });
  });

  it('refuses what is not an object, or a token that is not a string', () => {
    for (const text of [
      '',
      't',
      '"t"',
      '[]',
      'null',
      '{"token": null}',
      '{"token": 1}',
      '{"token": {}}',
      '{"token": "t"',
    ])
      assert.equal(readV1FirstMessage(text), undefined, text);
  });

  it('reads no token as the empty one, for a client its session cookie authenticates', () => {
    assert.deepEqual(readV1FirstMessage('{}'), { token: '' });
    assert.deepEqual(readV1FirstMessage('{"since": {"epoch": "e", "offset": "1"}}'), {
      token: '',
      since: { epoch: 'e', offset: '1' },
    });
  });
});

describe('protocol v1 frames', () => {
  it('wraps the payload verbatim', () => {
    const payload = '{"a": "Caf\\u00e9",  "content_type_id": 2}';
    assert.equal(
      eventEnvelope('17-0', payload),
      `{"type":"event","offset":"17-0","event":${payload}}`,
    );
    assert.equal(
      welcomeMessage({
        position: { epoch: 'e', offset: '3' },
        recoverable: false,
        recovered: false,
        replayed: 0,
      }),
      '{"type":"welcome","epoch":"e","offset":"3","recoverable":false,"recovered":false,"replayed":0}',
    );
  });

  it('builds each protocol frame once per event, only for routers with recipients', () => {
    const guide = createRouter<FrameSink>();
    const v1Router = createRouter<FrameSink>();
    const positions = createLivePositions(undefined);
    const dispatch = createFanout(
      guide,
      createMetrics(),
      createLogger('silent'),
      { maxEventBytes: 1024 },
      { router: v1Router, positions },
    );
    const guides = [new RecordingSink(), new RecordingSink()];
    const v1s = [new RecordingSink(), new RecordingSink()];
    for (const sink of guides) guide.add(sink, [2]);
    for (const sink of v1s) v1Router.add(sink, [2, 3]);
    const start = Number(positions.latest().offset);

    const book = '{"content_type_id": 2}';
    assert.equal(dispatch(book), 4);
    assert.equal(guides[0]!.frames[0], guides[1]!.frames[0], 'one guide frame for all');
    assert.equal(v1s[0]!.frames[0], v1s[1]!.frames[0], 'one v1 frame for all');
    assert.equal(textOf(guides[0]!.frames[0]!), book);
    const offset = String(start + 1);
    assert.equal(textOf(v1s[0]!.frames[0]!), eventEnvelope(offset, book));
    assert.deepEqual(v1s[0]!.offsets, [offset], 'v1 sinks are told the offset');
    assert.deepEqual(guides[0]!.offsets, [undefined], 'guide sinks are not');

    // Only v1 clients may see content type 3: no guide frame, the next offset.
    assert.equal(dispatch('{"content_type_id": 3}'), 2);
    assert.equal(guides[0]!.frames.length, 1);
    assert.deepEqual(v1s[1]!.offsets, [offset, String(start + 2)]);
    assert.equal(positions.latest().offset, String(start + 2));
  });

  it('passes the bus position through as the offset on a bus with history', () => {
    const v1Router = createRouter<FrameSink>();
    const handed = { epoch: 'e', offset: '5-0' };
    const positions = createLivePositions({
      latest: () => handed,
      compare: (a, b) => a.localeCompare(b),
      replay: async () => ({ complete: true, entries: [] }),
    });
    const dispatch = createFanout(
      createRouter<FrameSink>(),
      createMetrics(),
      createLogger('silent'),
      { maxEventBytes: 1024 },
      { router: v1Router, positions },
    );
    const sink = new RecordingSink();
    v1Router.add(sink, [1]);
    assert.equal(dispatch('{"content_type_id": 1}', { epoch: 'e', offset: '6-0' }), 1);
    assert.equal(textOf(sink.frames[0]!), eventEnvelope('6-0', '{"content_type_id": 1}'));
    assert.equal(dispatch('{"content_type_id": 1}'), 0, 'no position, no v1 envelope');
  });
});
