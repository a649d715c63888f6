/**
 * The v1 side of the client: reading sidecast's welcome and event frames, and keeping the stream
 * position across reconnections and (with a storage) page reloads. Only the shapes the client
 * needs are checked; anything else a server sends is ignored, so a newer server may add frame
 * types and fields without breaking older pages.
 */

/** The WebSocket subprotocol a v1 client offers; a server that does not speak it refuses. */
export const SUBPROTOCOL = 'sidecast.v1';

/** A point in sidecast's event history. Both strings are opaque: sent back exactly as received. */
export interface Position {
  readonly epoch: string;
  readonly offset: string;
}

/** What the client needs of `sessionStorage` (or `localStorage`, or anything shaped like it). */
export interface PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** What the server said when a v1 connection was accepted. */
export interface Welcome extends Position {
  /** Whether the server keeps history at all (false on a bus without history). */
  readonly recoverable: boolean;
  /** A position was sent and every event missed since follows before any live one. */
  readonly recovered: boolean;
  /** How many missed events follow (replayed), when recovered. */
  readonly replayed: number;
  /**
   * A position was sent but could not be honoured (history trimmed or lost, too many missed
   * events, a server without history): events may have been missed, so refetch the state.
   */
  readonly gap: boolean;
}

export type Frame<T> =
  | { readonly type: 'welcome'; readonly welcome: Omit<Welcome, 'gap'> }
  | { readonly type: 'event'; readonly offset: string; readonly event: T; readonly raw: string };

// The layout sidecast writes, with the payload's own text spliced in after `"event":`. Matching
// it lets `raw` be the payload exactly as published, and costs one JSON.parse of the payload.
const EVENT_HEAD = /^\{"type":"event","offset":("(?:[^"\\]|\\.)*"),"event":/;

/** Reads one server frame; undefined for anything that is not a well-formed welcome or event. */
export function parseFrame<T>(data: string): Frame<T> | undefined {
  const head = EVENT_HEAD.exec(data);
  if (head && data.endsWith('}')) {
    const raw = data.slice(head[0].length, -1);
    try {
      // If the slice parses as one value, the frame had exactly these three fields.
      return { type: 'event', offset: JSON.parse(head[1]!) as string, event: JSON.parse(raw), raw };
    } catch {
      // Another layout (more fields, whitespace): read the frame as a whole below.
    }
  }
  let frame: Record<string, unknown> | null;
  try {
    frame = JSON.parse(data) as Record<string, unknown> | null;
  } catch {
    return undefined;
  }
  if (typeof frame != 'object' || !frame) return undefined;
  const { type, epoch, offset, event } = frame;
  if (type == 'event' && typeof offset == 'string' && event !== undefined) {
    // The payload's own text is not recoverable from another layout; its JSON is the next best.
    return { type: 'event', offset, event: event as T, raw: JSON.stringify(event) };
  }
  if (type == 'welcome' && typeof epoch == 'string' && typeof offset == 'string') {
    const { recoverable, recovered, replayed } = frame;
    return {
      type: 'welcome',
      welcome: {
        epoch,
        offset,
        recoverable: recoverable === true,
        recovered: recovered === true,
        replayed: typeof replayed == 'number' && replayed > 0 ? replayed : 0,
      },
    };
  }
  return undefined;
}

// Storage may throw (disabled, private mode, quota): remembering is then in memory only.

export function loadPosition(
  storage: PositionStorage | undefined,
  key: string,
): Position | undefined {
  try {
    const saved = JSON.parse(storage?.getItem(key) ?? 'null') as Partial<Position> | null;
    const { epoch, offset } = saved ?? {};
    if (typeof epoch == 'string' && typeof offset == 'string') return { epoch, offset };
  } catch {
    // Unreadable or corrupted: start without a position, as a first visit would.
  }
  return undefined;
}

export function savePosition(
  storage: PositionStorage | undefined,
  key: string,
  position: Position,
): void {
  try {
    storage?.setItem(key, JSON.stringify(position));
  } catch {
    // See above: the in-memory position still serves reconnections.
  }
}
