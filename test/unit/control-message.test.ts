/** Control messages as Django sends them, and everything else, which is dropped with a reason. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CONTROL_IDS, readControlMessage } from '../../src/server/control-message.js';

describe('control messages', () => {
  it('reads users, groups and all, with ids as text whether sent as strings or numbers', () => {
    assert.deepEqual(readControlMessage('{"type":"users","ids":["42",43]}'), {
      message: { type: 'users', ids: ['42', '43'] },
    });
    assert.deepEqual(readControlMessage('{"type":"groups","ids":[3],"extra":true}'), {
      message: { type: 'groups', ids: ['3'] },
    });
    assert.deepEqual(readControlMessage('{"type":"all"}'), { message: { type: 'all' } });
    const uuid = '6f1c2a9e-8a7b-4c1d-9e2f-0a1b2c3d4e5f';
    assert.deepEqual(readControlMessage(JSON.stringify({ type: 'users', ids: [uuid] })), {
      message: { type: 'users', ids: [uuid] },
    });
  });

  it('drops what is not a control message, saying why', () => {
    const cases: [string, 'malformed' | 'unknown'][] = [
      ['not json', 'malformed'],
      ['[1, 2]', 'malformed'],
      ['null', 'malformed'],
      ['"users"', 'malformed'],
      ['{"ids": [1]}', 'malformed'],
      ['{"type": 7}', 'malformed'],
      ['{"type": "users"}', 'malformed'],
      ['{"type": "users", "ids": "42"}', 'malformed'],
      ['{"type": "users", "ids": [1.5]}', 'malformed'],
      ['{"type": "users", "ids": [null]}', 'malformed'],
      ['{"type": "users", "ids": [""]}', 'malformed'],
      ['{"type": "users", "ids": [{"pk": 1}]}', 'malformed'],
      [JSON.stringify({ type: 'users', ids: ['x'.repeat(256)] }), 'malformed'],
      [JSON.stringify({ type: 'groups', ids: Array(MAX_CONTROL_IDS + 1).fill(1) }), 'malformed'],
      ['{"type": "sessions", "ids": [1]}', 'unknown'],
      ['{"type": "__proto__"}', 'unknown'],
    ];
    for (const [text, reason] of cases) {
      const read = readControlMessage(text);
      assert.ok('dropped' in read, text);
      assert.equal(read.dropped, reason, text);
      assert.ok(read.detail.length > 0 && read.detail.length < 120, text);
    }
  });
});
