import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isSidecastError } from '../../src/errors.js';
import { assertPublishable, inspectEvent, oversize } from '../../src/event.js';

/** A --max-event-bytes for these properties: small, so that oversized events are cheap to make. */
const MAX_EVENT_BYTES = 64 * 1024;

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
          const id = assertPublishable(payload, MAX_EVENT_BYTES);
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
            () => assertPublishable(payload, MAX_EVENT_BYTES),
            (error: unknown) => isSidecastError(error, 'PUBLISH_REFUSED') && error.status === 413,
          );
        },
      ),
      { numRuns: 50 },
    );
  });

  it('tells an event over the limit by its UTF-8 size, encoding it only when its length cannot', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'é', '€', '😀', '\ud800'), maxLength: 64 });
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 260 }), (payload, maxBytes) => {
        const bytes = Buffer.byteLength(payload);
        const verdict = oversize(payload, maxBytes);
        if (bytes <= maxBytes) assert.equal(verdict, undefined);
        else {
          assert.ok(verdict !== undefined && verdict > maxBytes && verdict <= bytes);
          assert.throws(
            () => assertPublishable(payload, maxBytes),
            (error: unknown) =>
              isSidecastError(error, 'PUBLISH_REFUSED') &&
              error.status === 413 &&
              error.message.startsWith(`event is ${bytes} bytes, the limit is ${maxBytes} `),
          );
        }
      }),
      { numRuns: 5000 },
    );
  });
});
