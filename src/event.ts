import { SidecastError } from './errors.js';

/** The largest event sidecast accepts from a publisher (HTTP or CLI); Redis events are not capped. */
export const MAX_EVENT_BYTES = 64 * 1024;

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

/** For publishers: the same check, as an error that says what is wrong. */
export function assertPublishable(payload: string): number {
  const size = Buffer.byteLength(payload);
  if (size > MAX_EVENT_BYTES) {
    throw new SidecastError(
      'PUBLISH_REFUSED',
      `event is ${size} bytes, the limit is ${MAX_EVENT_BYTES}`,
      { status: 413 },
    );
  }
  const check = inspectEvent(payload);
  if (!check.ok)
    throw new SidecastError('EVENT_INVALID', `invalid event: ${check.reason}`, { status: 400 });
  return check.contentTypeId;
}
