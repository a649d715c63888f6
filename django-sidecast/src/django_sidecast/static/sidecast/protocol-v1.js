/**
 * The v1 side of the client: reading sidecast's welcome and event frames, and keeping the stream
 * position across reconnections and (with a storage) page reloads. Only the shapes the client
 * needs are checked; anything else a server sends is ignored, so a newer server may add frame
 * types and fields without breaking older pages.
 */
/** The WebSocket subprotocol a v1 client offers; a server that does not speak it refuses. */
export const SUBPROTOCOL = 'sidecast.v1';
// The layout sidecast writes, with the payload's own text spliced in after `"event":`. Matching
// it lets `raw` be the payload exactly as published, and costs one JSON.parse of the payload.
const EVENT_HEAD = /^\{"type":"event","offset":("(?:[^"\\]|\\.)*"),"event":/;
/** Reads one server frame; undefined for anything that is not a well-formed welcome or event. */
export function parseFrame(data) {
    const head = EVENT_HEAD.exec(data);
    if (head && data.endsWith('}')) {
        const raw = data.slice(head[0].length, -1);
        try {
            // If the slice parses as one value, the frame had exactly these three fields.
            return { type: 'event', offset: JSON.parse(head[1]), event: JSON.parse(raw), raw };
        }
        catch {
            // Another layout (more fields, whitespace): read the frame as a whole below.
        }
    }
    let frame;
    try {
        frame = JSON.parse(data);
    }
    catch {
        return undefined;
    }
    if (typeof frame != 'object' || !frame)
        return undefined;
    const { type, epoch, offset, event } = frame;
    if (type == 'event' && typeof offset == 'string' && event !== undefined) {
        // The payload's own text is not recoverable from another layout; its JSON is the next best.
        return { type: 'event', offset, event: event, raw: JSON.stringify(event) };
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
export function loadPosition(storage, key) {
    try {
        const saved = JSON.parse(storage?.getItem(key) ?? 'null');
        const { epoch, offset } = saved ?? {};
        if (typeof epoch == 'string' && typeof offset == 'string')
            return { epoch, offset };
    }
    catch {
        // Unreadable or corrupted: start without a position, as a first visit would.
    }
    return undefined;
}
export function savePosition(storage, key, position) {
    try {
        storage?.setItem(key, JSON.stringify(position));
    }
    catch {
        // See above: the in-memory position still serves reconnections.
    }
}
//# sourceMappingURL=protocol-v1.js.map