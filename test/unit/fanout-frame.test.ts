/** textFrame: one unmasked, uncompressed, final text frame, for every length encoding. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { textFrame } from '../../src/server/frame.js';

describe('textFrame', () => {
  for (const [size, header] of [
    [0, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
    [200_000, 10],
  ] as const) {
    it(`frames ${size} bytes with a ${header}-byte header`, () => {
      const payload = 'x'.repeat(size);
      const frame = textFrame(payload);
      assert.equal(frame.length, header + size);
      assert.equal(frame[0], 0x81, 'FIN, no RSV bits, opcode 1');
      const marker = frame[1]!;
      assert.equal(marker & 0x80, 0, 'not masked');
      const length =
        header === 2
          ? marker
          : header === 4
            ? frame.readUInt16BE(2)
            : Number(frame.readBigUInt64BE(2));
      assert.equal(length, size);
      assert.equal(frame.subarray(header).toString(), payload);
    });
  }

  it('counts UTF-8 bytes, not characters', () => {
    const payload = '{"object": "été ☃ 🎉"}';
    const frame = textFrame(payload);
    const bytes = Buffer.byteLength(payload);
    assert.equal(frame[1], bytes);
    assert.equal(frame.subarray(2).toString('utf8'), payload);
  });
});
