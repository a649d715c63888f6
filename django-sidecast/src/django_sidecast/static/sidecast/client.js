import { backoffDelay, resolveBackoff } from './backoff.js';
import { loadPosition, parseFrame, savePosition, SUBPROTOCOL, } from './protocol-v1.js';
// Mirrors of the server's close contract, kept here so this folder imports nothing else.
const GOING_AWAY = 1001;
const INTERNAL_ERROR = 1011;
const SERVICE_RESTART = 1012;
const AUTH_FAILED_REASON = 'authentication failed';
const POLICY_VIOLATION = 1008;
const ACCESS_REVOKED_REASON = 'access revoked';
/** A connection that lasted this long was healthy: its end restarts the backoff from the bottom. */
const HEALTHY_MS = 20_000;
/**
 * Connects to sidecast, authenticates with a token from getToken(), delivers events, and keeps
 * reconnecting until close(). The first connection starts on the next microtask, so callbacks
 * may already refer to the returned client.
 */
export function createClient(options) {
    const found = options.WebSocket ?? globalThis.WebSocket;
    if (!found)
        throw new TypeError('sidecast: no WebSocket available; pass options.WebSocket');
    const Socket = found;
    const backoff = resolveBackoff(options.backoff);
    const network = typeof window == 'object' ? window : undefined;
    const v1 = options.protocol == 'v1';
    const { storage, storageKey = 'sidecast.position' } = options;
    let position = v1 ? loadPosition(storage, storageKey) : undefined;
    let state = 'connecting';
    let socket;
    let timer;
    /** Failed attempts since the last healthy connection: the backoff exponent. */
    let failures = 0;
    /** Consecutive connections closed with "authentication failed". */
    let refusals = 0;
    function report(next, detail) {
        state = next;
        options.onState?.({ state: next, ...detail });
    }
    function stop(next, detail) {
        clearTimeout(timer);
        network?.removeEventListener('online', onOnline);
        const current = socket;
        socket = undefined;
        current?.close(1000);
        report(next, detail);
    }
    function retry(delayMs, detail) {
        report('reconnecting', { ...detail, delayMs });
        timer = setTimeout(connect, delayMs);
    }
    function onOnline() {
        // The network is back: whatever the last delay was, it was about the network being gone.
        if (state != 'reconnecting')
            return;
        clearTimeout(timer);
        failures = 0;
        connect();
    }
    function remember(next) {
        position = { epoch: next.epoch, offset: next.offset };
        savePosition(storage, storageKey, position);
    }
    function connect() {
        report('connecting');
        let ws;
        try {
            ws = v1 ? new Socket(options.url, [SUBPROTOCOL]) : new Socket(options.url);
        }
        catch (error) {
            return stop('closed', { error });
        }
        socket = ws;
        let openedAt = 0;
        /** v1: whether this connection asked to resume, and its welcome once it came. */
        let since;
        let welcome;
        /** v1: replayed events still to come; the welcome's position is ours only after them. */
        let replaying = 0;
        // Without an error listener `ws` in Node throws; the close event that follows says it all.
        ws.addEventListener('error', () => { });
        ws.addEventListener('open', () => {
            if (socket != ws)
                return;
            openedAt = Date.now();
            Promise.resolve()
                .then(options.getToken)
                .then((token) => {
                if (socket != ws)
                    return;
                if (!token)
                    return stop('unauthorized');
                if (!v1) {
                    ws.send(token);
                    return report('open');
                }
                since = position;
                ws.send(JSON.stringify(since ? { token, since } : { token }));
            }, (error) => {
                if (socket != ws)
                    return;
                socket = undefined;
                ws.close(1000);
                retry(backoffDelay(failures++, backoff), { error });
            });
        });
        ws.addEventListener('message', ({ data }) => {
            if (socket != ws || typeof data != 'string')
                return;
            if (v1)
                return receive(data);
            failures = refusals = 0;
            let event;
            try {
                event = JSON.parse(data);
            }
            catch {
                return; // sidecast forwards JSON only; anything else is not meant for us
            }
            options.onEvent?.(event, data);
        });
        function receive(data) {
            const frame = parseFrame(data);
            if (frame?.type == 'welcome') {
                // The token was accepted; the backoff, as in the guide protocol, waits for an event.
                refusals = 0;
                welcome = frame.welcome;
                replaying = frame.welcome.replayed;
                if (!replaying)
                    remember(welcome);
                const gap = !!since && !frame.welcome.recovered;
                options.onWelcome?.({ ...frame.welcome, gap });
                report('open', { recovered: frame.welcome.recovered, gap });
            }
            else if (frame && welcome) {
                failures = refusals = 0;
                remember({ epoch: welcome.epoch, offset: frame.offset });
                // The live feed starts after the welcome's offset, which may lie beyond the last
                // replayed event (events this user may not see): resume from there once caught up.
                if (replaying && !--replaying)
                    remember(welcome);
                options.onEvent?.(frame.event, frame.raw);
            }
            // Anything else (malformed, unknown, an event before the welcome) is not for this client.
        }
        ws.addEventListener('close', ({ code, reason }) => {
            if (socket != ws)
                return;
            socket = undefined;
            const detail = { code, reason };
            const refused = code == INTERNAL_ERROR && reason == AUTH_FAILED_REASON;
            if (refused || (code == POLICY_VIOLATION && reason == ACCESS_REVOKED_REASON)) {
                // One refusal may be an expired token, and a revocation may be a password changed by
                // the user themself: one fresh token settles it. Two in a row means the user is out.
                if (++refusals > 1)
                    return stop('unauthorized', detail);
                return retry(0, detail);
            }
            refusals = 0;
            if (openedAt && Date.now() - openedAt >= HEALTHY_MS)
                failures = 0;
            if (code == GOING_AWAY || code == SERVICE_RESTART) {
                // A restart or deploy, not a fault: come back at once, jittered only enough to spread
                // the herd over the first backoff window.
                failures = 0;
                return retry(backoffDelay(0, backoff), detail);
            }
            // 1013 (database busy), 1008 (limits), refused or dropped connections: back off.
            retry(backoffDelay(failures++, backoff), detail);
        });
    }
    network?.addEventListener('online', onOnline);
    void Promise.resolve().then(() => state == 'connecting' && connect());
    return {
        get state() {
            return state;
        },
        get position() {
            return position;
        },
        close() {
            if (state != 'closed')
                stop('closed');
        },
    };
}
//# sourceMappingURL=client.js.map