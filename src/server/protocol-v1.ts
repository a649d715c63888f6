/**
 * Protocol v1 (subprotocol `sidecast.v1`): a JSON first message that may carry the position to
 * resume after, one welcome before any event, and every event in an envelope with its offset.
 * Clients that offer no subprotocol keep the guide protocol (./protocol.ts), unchanged.
 */
import type { StreamPosition } from '../bus/bus.js';
import { closeOf } from '../errors.js';
import type { LogLimiter } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../router.js';
import { welcomeMessage } from './envelope.js';
import type { FrameSink } from './fanout.js';
import { textFrame } from './frame.js';
import type { LivePositions } from './positions.js';
import type { ClientProtocol, FirstMessage, LiveConnection } from './protocol.js';
import { Recovery } from './recovery.js';

export const V1_SUBPROTOCOL = 'sidecast.v1';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `since` as sent: a position, or null for anything else (which resumes nothing). */
function positionOf(since: unknown): StreamPosition | null {
  if (!isObject(since)) return null;
  const { epoch, offset } = since;
  return typeof epoch === 'string' && typeof offset === 'string' ? { epoch, offset } : null;
}

/**
 * `{"token": "...", "since": {"epoch": "...", "offset": "..."}}`. Not JSON, not an object or
 * a token that is not a string: undefined, refused like a bad token. No token at all is the
 * empty one, for a client whose upgrade headers authenticate it (a session cookie). Other fields
 * are ignored, so later versions can add some; a `since` that is no position is kept as null, not
 * refused: the client is told `recovered: false`, the same answer as for a position that cannot
 * be honoured.
 */
export function readV1FirstMessage(text: string): FirstMessage | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(message)) return undefined;
  const { token = '', since } = message;
  if (typeof token !== 'string') return undefined;
  return since === undefined ? { token } : { token, since: positionOf(since) };
}

export interface V1Dependencies {
  /** The router of v1 connections: fan-out writes envelope frames to it. */
  readonly router: Router<FrameSink>;
  readonly positions: LivePositions;
  readonly recoverMax: number;
  readonly maxEventBytes: number;
  readonly maxBuffered: number;
  readonly metrics: Metrics;
  /** Incomplete replays can come in floods (a stream trimmed, clients reconnecting at once). */
  readonly log: LogLimiter;
}

export function createV1Protocol(deps: V1Dependencies): ClientProtocol {
  const { router, positions, metrics } = deps;
  const history = positions.history;
  const context = history === undefined ? undefined : { ...deps, history, screened: new WeakMap() };
  /** Connections whose replay is running, each stood in for by its Recovery in the router. */
  const recovering = new Map<LiveConnection, Recovery>();

  /** Welcome now, then live: nothing to replay. */
  function greet(connection: LiveConnection, contentTypeIds: Iterable<number>): void {
    const welcome = welcomeMessage({
      position: positions.latest(),
      recoverable: positions.recoverable,
      recovered: false,
      replayed: 0,
    });
    // Written before the router is told, so that no event can overtake it.
    if (connection.write(textFrame(welcome))) router.add(connection, contentTypeIds);
  }

  return {
    tokenOnlyFirstMessage: false,
    readFirstMessage: readV1FirstMessage,
    join(connection, principal, first) {
      const { since } = first;
      if (since === undefined) return greet(connection, principal.contentTypeIds);
      if (since === null || context === undefined) {
        metrics.replays.inc({ outcome: since === null ? 'invalid' : 'no_history' });
        return greet(connection, principal.contentTypeIds);
      }
      const recovery = new Recovery(connection, principal, context);
      recovering.set(connection, recovery);
      recovery
        .run(since, () => recovering.delete(connection))
        .catch((error: unknown) => {
          // A bug or a driver breaking its promises: the client reconnects rather than waits.
          recovering.delete(connection);
          recovery.cancel();
          deps.log.log('error', 'recovery crashed', { err: error }, 'recovery failed');
          const { code, reason } = closeOf('AUTH_UNAVAILABLE');
          connection.close(code, reason);
        });
    },
    leave(connection) {
      const recovery = recovering.get(connection);
      if (recovery === undefined) return router.remove(connection);
      recovering.delete(connection);
      recovery.cancel();
    },
    update(connection, contentTypeIds) {
      const recovery = recovering.get(connection);
      return recovery === undefined
        ? router.update(connection, contentTypeIds)
        : recovery.update(contentTypeIds);
    },
  };
}
