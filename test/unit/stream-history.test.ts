/**
 * The pure parts of the redis-streams bus: entry id order, the bounded window, where a trimmed
 * stream's history starts, and what counts as a lost history.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { historyLost } from '../../src/bus/stream-epoch.js';
import { compareIdStrings, ENTRY_ID_ORDER, parseEntryId } from '../../src/bus/stream-ids.js';
import { historyFloor, type StreamInfo } from '../../src/bus/stream-replies.js';
import { StreamWindow } from '../../src/bus/stream-window.js';

const id = (text: string) => parseEntryId(text)!;

describe('stream entry ids', () => {
  it('are ordered as pairs of numbers, not as text', () => {
    assert.ok(compareIdStrings('9-0', '10-0') < 0);
    assert.ok(compareIdStrings('10-9', '10-10') < 0);
    assert.ok(compareIdStrings('18446744073709551615-0', '18446744073709551614-5') > 0);
    assert.equal(compareIdStrings('5-5', '5-5'), 0);
    assert.ok(compareIdStrings('junk', '0-0') < 0, 'what is not an id sorts first');
  });

  it('are only what Redis gives out', () => {
    for (const text of [
      '',
      '1',
      '1-',
      '-1',
      '1-2-3',
      ' 1-2',
      '1-2 ',
      'a-1',
      '18446744073709551616-0',
    ])
      assert.equal(parseEntryId(text), undefined, text);
    assert.deepEqual(parseEntryId('1764578400000-3'), { ms: 1764578400000n, seq: 3n });
  });
});

describe('the window of recent events', () => {
  it('keeps at most maxEntries, moving its floor up to the last one removed', () => {
    const window = new StreamWindow(
      { maxEntries: 3, maxBytes: 1 << 20 },
      ENTRY_ID_ORDER,
      id('0-0'),
    );
    for (let n = 1; n <= 5; n++) window.push(`${n}-0`, `{"n":${n}}`);
    assert.equal(window.size, 3);
    assert.deepEqual(window.floor, id('2-0'));
    assert.ok(window.covers(id('2-0')));
    assert.ok(!window.covers(id('1-9')));
    assert.deepEqual(
      window.range(id('2-0'), id('5-0'), 10)?.map((entry) => entry.id),
      ['3-0', '4-0', '5-0'],
    );
    assert.deepEqual(
      window.range(id('3-5'), id('4-0'), 10)?.map((entry) => entry.id),
      ['4-0'],
    );
    assert.equal(window.range(id('2-0'), id('5-0'), 2), undefined, 'more than the limit');
    assert.deepEqual(window.range(id('5-0'), id('5-0'), 0), []);
  });

  it('keeps at most maxBytes, and skips past an event larger than all of it', () => {
    const window = new StreamWindow(
      { maxEntries: 1000, maxBytes: 2000 },
      ENTRY_ID_ORDER,
      id('0-0'),
    );
    for (let n = 1; n <= 100; n++) window.push(`${n}-0`, 'x'.repeat(100));
    assert.ok(window.bytes <= 2000, `${window.bytes} bytes`);
    assert.ok(window.size > 0 && window.size < 100);
    window.push('101-0', 'x'.repeat(5000));
    assert.equal(window.size, 0);
    assert.deepEqual(window.floor, id('101-0'), 'contiguous: the floor moves past it');
    window.push('102-0', 'y');
    assert.deepEqual(
      window.range(id('101-0'), id('102-0'), 5)?.map((entry) => entry.payload),
      ['y'],
    );
  });

  it('orders positions as its order says: sequence numbers as numbers, 9 before 10', () => {
    const sequences = {
      parse: (offset: string) => (/^\d+$/.test(offset) ? Number(offset) : undefined),
      compare: (a: number, b: number) => a - b,
    };
    const window = new StreamWindow({ maxEntries: 5, maxBytes: 1 << 20 }, sequences, 0);
    for (let seq = 8; seq <= 12; seq++) window.push(String(seq), `e${seq}`, seq);
    window.push('not a sequence', 'ignored');
    window.push('13', 'e13');
    assert.equal(window.size, 5);
    assert.equal(window.floor, 8);
    assert.ok(window.covers(8) && !window.covers(7));
    assert.deepEqual(
      window.range(9, 12, 10)?.map((entry) => entry.entry),
      [
        { offset: '10', payload: 'e10' },
        { offset: '11', payload: 'e11' },
        { offset: '12', payload: 'e12' },
      ],
    );
  });

  it('stays correct across compactions', () => {
    const window = new StreamWindow(
      { maxEntries: 10, maxBytes: 1 << 20 },
      ENTRY_ID_ORDER,
      id('0-0'),
    );
    for (let n = 1; n <= 5000; n++) window.push(`${n}-0`, String(n));
    assert.deepEqual(
      window.range(id('4990-0'), id('5000-0'), 10)?.map((entry) => entry.payload),
      ['4991', '4992', '4993', '4994', '4995', '4996', '4997', '4998', '4999', '5000'],
    );
  });
});

const info = (fields: Partial<StreamInfo>): StreamInfo => ({
  length: 3,
  lastGeneratedId: '30-0',
  maxDeletedId: '0-0',
  firstEntryId: '10-0',
  entriesAdded: 3,
  ...fields,
});

describe('where the history of a stream starts', () => {
  it('is the largest deleted id when nothing was trimmed', () => {
    assert.deepEqual(historyFloor(info({})), id('0-0'));
    assert.deepEqual(historyFloor(info({ maxDeletedId: '20-0', entriesAdded: 4 })), id('20-0'));
  });

  it('is the oldest entry left once entries were trimmed, or the last id of an emptied stream', () => {
    assert.deepEqual(historyFloor(info({ entriesAdded: 10 })), id('10-0'));
    assert.deepEqual(
      historyFloor(info({ length: 0, entriesAdded: 10, firstEntryId: '0-0' })),
      id('30-0'),
    );
    assert.deepEqual(
      historyFloor(info({ entriesAdded: 10, maxDeletedId: '25-0' })),
      id('25-0'),
      'a later XDEL wins',
    );
  });
});

describe('a lost history', () => {
  const stream = info({ entriesAdded: 5 });
  it('is an epoch key gone, a stream gone, or one with fewer entries ever added', () => {
    assert.equal(historyLost({ exists: true, entriesAdded: 5 }, { epoch: null, stream }), true);
    assert.equal(
      historyLost({ exists: true, entriesAdded: 5 }, { epoch: 'e', stream: undefined }),
      true,
    );
    assert.equal(
      historyLost({ exists: true, entriesAdded: 6 }, { epoch: 'e', stream }),
      true,
      'deleted and made anew',
    );
  });

  it('is not a trim, new entries, or a stream that never existed', () => {
    assert.equal(
      historyLost(
        { exists: true, entriesAdded: 5 },
        { epoch: 'e', stream: info({ length: 0, entriesAdded: 5 }) },
      ),
      false,
    );
    assert.equal(historyLost({ exists: true, entriesAdded: 2 }, { epoch: 'e', stream }), false);
    assert.equal(
      historyLost({ exists: false, entriesAdded: 0 }, { epoch: 'e', stream: undefined }),
      false,
    );
    assert.equal(historyLost({ exists: false, entriesAdded: 0 }, { epoch: 'e', stream }), false);
  });
});
