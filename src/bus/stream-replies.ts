import { isUtf8 } from 'node:buffer';
import { compareEntryIds, parseEntryId, type EntryId } from './stream-ids.js';

/**
 * Reading the replies of the stream commands, asked for as raw bytes (RESP2, `callBuffer`) so
 * that a payload reaches the handler byte for byte and a field that is not UTF-8 is seen as such.
 * Replies are checked as they are read: a shape this code does not know is an error, not a crash.
 */

/** One stream entry as read: its id and its payload, or why it carries no event. */
export type StreamEntry =
  | { readonly id: string; readonly payload: string }
  | { readonly id: string; readonly dropped: 'no_payload' | 'not_utf8' };

const PAYLOAD = Buffer.from('payload');

function text(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  throw new Error(`unexpected reply from Redis: ${typeof value}`);
}

function entry(raw: unknown): StreamEntry {
  if (!Array.isArray(raw) || raw.length !== 2) throw new Error('unexpected stream entry reply');
  const id = text(raw[0]);
  // The fields of an entry that was deleted under a pending read come back as nil.
  const fields: unknown[] = Array.isArray(raw[1]) ? raw[1] : [];
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const name = fields[index];
    if (!Buffer.isBuffer(name) || !name.equals(PAYLOAD)) continue;
    const value = fields[index + 1];
    if (!Buffer.isBuffer(value) || !isUtf8(value)) return { id, dropped: 'not_utf8' };
    return { id, payload: value.toString('utf8') };
  }
  return { id, dropped: 'no_payload' };
}

/** The entries of an XRANGE or XREVRANGE reply. */
export function rangeEntries(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) throw new Error('unexpected XRANGE reply');
  return reply.map(entry);
}

/** The entries of an XREAD reply on one stream (nil when BLOCK timed out). */
export function readEntries(reply: unknown): StreamEntry[] {
  if (reply === null) return [];
  if (!Array.isArray(reply) || reply.length !== 1 || !Array.isArray(reply[0]))
    throw new Error('unexpected XREAD reply');
  return rangeEntries((reply[0] as unknown[])[1]);
}

/** What XINFO STREAM tells about the history (Redis 7 fields). */
export interface StreamInfo {
  readonly length: number;
  readonly lastGeneratedId: string;
  /** The largest id removed by XDEL, "0-0" if none ever was (trims do not set it). */
  readonly maxDeletedId: string;
  /** The id of the oldest entry still there ("0-0" when the stream is empty). */
  readonly firstEntryId: string;
  /** Entries ever added: only a stream deleted and made anew counts fewer. */
  readonly entriesAdded: number;
}

export function streamInfo(reply: unknown): StreamInfo {
  if (!Array.isArray(reply)) throw new Error('unexpected XINFO STREAM reply');
  const fields = new Map<string, unknown>();
  for (let index = 0; index + 1 < reply.length; index += 2) {
    fields.set(text(reply[index]), reply[index + 1]);
  }
  const maxDeleted = fields.get('max-deleted-entry-id');
  const added = fields.get('entries-added');
  const first = fields.get('recorded-first-entry-id');
  if (maxDeleted === undefined || added === undefined || first === undefined)
    throw new Error('XINFO STREAM without max-deleted-entry-id: Redis 7 or later is required');
  return {
    length: Number(text(fields.get('length'))),
    lastGeneratedId: text(fields.get('last-generated-id')),
    maxDeletedId: text(maxDeleted),
    firstEntryId: text(first),
    entriesAdded: Number(text(added)),
  };
}

/**
 * The lowest position after which the stream has lost nothing: every entry ever added after it
 * is still there. XDEL raises max-deleted-entry-id; a trim (MAXLEN, MINID) removes the oldest
 * entries without recording which, so once anything was removed, only a position at or after the
 * oldest entry left (or, for an emptied stream, the last id given out) is known to be whole. A
 * position just before the oldest entry counts as trimmed too: Redis cannot tell it apart.
 */
export function historyFloor(info: StreamInfo): EntryId {
  const deleted = parseEntryId(info.maxDeletedId) ?? ZERO;
  if (info.entriesAdded <= info.length) return deleted;
  const oldest = parseEntryId(info.length > 0 ? info.firstEntryId : info.lastGeneratedId) ?? ZERO;
  return compareEntryIds(oldest, deleted) > 0 ? oldest : deleted;
}

const ZERO: EntryId = { ms: 0n, seq: 0n };

/** Whether an error is Redis saying the stream key does not exist. */
export function isNoSuchKey(error: unknown): boolean {
  return error instanceof Error && /no such key/i.test(error.message);
}
