import type { PositionOrder } from './stream-window.js';

/**
 * Redis stream entry ids, "<milliseconds>-<sequence>": two unsigned 64-bit integers, ordered as
 * a pair. They are compared as numbers, never as text ("9-0" comes before "10-0").
 */

export interface EntryId {
  readonly ms: bigint;
  readonly seq: bigint;
}

const MAX_U64 = (1n << 64n) - 1n;
const ID = /^(\d{1,20})-(\d{1,20})$/;

/** The id, or undefined for anything Redis would not give out as an entry id. */
export function parseEntryId(text: string): EntryId | undefined {
  const match = ID.exec(text);
  if (!match) return undefined;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  if (ms > MAX_U64 || seq > MAX_U64) return undefined;
  return { ms, seq };
}

export function compareEntryIds(a: EntryId, b: EntryId): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

/** Entry ids as a window's positions. */
export const ENTRY_ID_ORDER: PositionOrder<EntryId> = {
  parse: parseEntryId,
  compare: compareEntryIds,
};

/**
 * Orders two id strings. Something that is not an id sorts before every id (and such strings
 * among themselves as text), so a caller's stray value never throws in the middle of fan-out.
 */
export function compareIdStrings(a: string, b: string): number {
  const left = parseEntryId(a);
  const right = parseEntryId(b);
  if (left && right) return compareEntryIds(left, right);
  if (left) return 1;
  if (right) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Before every entry id: where a stream that never had an entry starts. */
export const ZERO_ID = '0-0';

/** When the entry was added, in ms since the epoch (ids made by `XADD *` carry Redis's clock). */
export function entryTime(id: EntryId): number {
  return Number(id.ms);
}
