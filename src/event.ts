import { SidecastError } from './errors.js';

/**
 * Whether `payload` holds more than `maxBytes` bytes of UTF-8, without encoding it when its length
 * alone tells: a string of n UTF-16 units is n to 3n bytes. Returns the size, or a lower bound on
 * it when that is enough to say it is too large; undefined when it fits.
 */
export function oversize(payload: string, maxBytes: number): number | undefined {
  if (payload.length > maxBytes) return payload.length;
  if (payload.length * 3 <= maxBytes) return undefined;
  const bytes = Buffer.byteLength(payload);
  return bytes > maxBytes ? bytes : undefined;
}

export type EventCheck = { ok: true; contentTypeId: number } | { ok: false; reason: string };

/**
 * Reads the routing key of an event without trusting the publisher: the payload must be a JSON
 * object whose `content_type_id` is an integer. Never throws.
 */
export function inspectEvent(payload: string): EventCheck {
  let event: unknown;
  try {
    event = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    return { ok: false, reason: 'not a JSON object' };
  }
  const id = (event as Record<string, unknown>).content_type_id;
  if (id === null) return { ok: false, reason: 'content_type_id is null' };
  if (!Number.isSafeInteger(id)) return { ok: false, reason: 'no integer content_type_id' };
  return { ok: true, contentTypeId: id as number };
}

/**
 * For publishers: the same checks as fan-out (size, then routing key), as an error that says what
 * is wrong. `maxBytes` is --max-event-bytes.
 */
export function assertPublishable(payload: string, maxBytes: number): number {
  if (oversize(payload, maxBytes) !== undefined) {
    // The exact size helps the publisher, and a refused event is rare enough to measure it.
    throw new SidecastError(
      'EVENT_TOO_LARGE',
      `event is ${Buffer.byteLength(payload)} bytes, the limit is ${maxBytes} (--max-event-bytes): publish an id and let clients fetch the rest`,
    );
  }
  const check = inspectEvent(payload);
  if (!check.ok) throw new SidecastError('EVENT_INVALID', `invalid event: ${check.reason}`);
  return check.contentTypeId;
}
