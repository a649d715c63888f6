import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isSidecastError } from '../../src/errors.js';
import { assertPublishable, inspectEvent, MAX_EVENT_BYTES } from '../../src/event.js';

/** Strings that look like events often enough to reach every branch, and anything else. */
const jsonish = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.json(),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc
    .record({
      content_type_id: fc.oneof(
        fc.integer(),
        fc.double(),
        fc.bigInt().map(String),
        fc.constant(null),
        fc.string(),
        fc.boolean(),
        fc.array(fc.integer()),
      ),
      model: fc.string(),
    })
    .map((event) => JSON.stringify(event)),
  // Lone surrogates and raw control bytes, as a broken publisher could send.
  fc.string({
    unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
  }),
);

describe('event parsing never throws out of inspectEvent, and assertPublishable only with SidecastError', () => {
  it('inspectEvent answers every input with a verdict', () => {
    fc.assert(
      fc.property(jsonish, (payload) => {
        const check = inspectEvent(payload);
        if (check.ok) {
          assert.ok(Number.isSafeInteger(check.contentTypeId));
          const parsed = JSON.parse(payload) as { content_type_id: unknown };
          assert.equal(parsed.content_type_id, check.contentTypeId);
        } else {
          assert.equal(typeof check.reason, 'string');
          assert.ok(check.reason.length > 0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts exactly the JSON objects whose content_type_id is a safe integer', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue(), (rest, id) => {
        const payload = JSON.stringify({ ...rest, content_type_id: id });
        const check = inspectEvent(payload);
        assert.equal(check.ok, Number.isSafeInteger(id));
      }),
      { numRuns: 1000 },
    );
  });

  it('assertPublishable returns the id or throws a SidecastError with an HTTP status', () => {
    fc.assert(
      fc.property(jsonish, (payload) => {
        try {
          const id = assertPublishable(payload);
          assert.equal(inspectEvent(payload).ok, true);
          assert.ok(Number.isSafeInteger(id));
        } catch (error) {
          assert.ok(isSidecastError(error), `not a SidecastError: ${String(error)}`);
          assert.ok(error.code === 'EVENT_INVALID' || error.code === 'PUBLISH_REFUSED');
          assert.ok(error.status === 400 || error.status === 413);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses oversized events by their UTF-8 size, before parsing them', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4096 }),
        fc.constantFrom('a', 'é', '€', '😀'),
        (extra, char) => {
          const filler = char.repeat(
            Math.ceil((MAX_EVENT_BYTES + extra) / Buffer.byteLength(char)),
          );
          const payload = JSON.stringify({ content_type_id: 1, filler });
          assert.throws(
            () => assertPublishable(payload),
            (error: unknown) => isSidecastError(error, 'PUBLISH_REFUSED') && error.status === 413,
          );
        },
      ),
      { numRuns: 50 },
    );
  });
});
