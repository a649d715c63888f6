import type { Principal } from '../auth/authenticator.js';
import type { StreamPosition } from '../bus/bus.js';
import type { Router } from '../router.js';
import type { FrameSink } from './fanout.js';

/** What a client's first message carries, read by the protocol it speaks. */
export interface FirstMessage {
  /** Handed to the authenticator as the credential's token. */
  readonly token: string;
  /**
   * Protocol v1: the position of the last event the client received. `null` when the client sent
   * something that is not a position: it resumes nothing, like a client that sent none.
   */
  readonly since?: StreamPosition | null;
}

/** What a protocol needs from a connection that just went live. */
export interface LiveConnection extends FrameSink {
  /** Closes it as a slow consumer: what it holds unsent (or waiting for it) passed the limit. */
  closeSlow(): void;
  /** Closes it with this code and reason (a failure that is no refusal of the client). */
  close(code: number, reason: string): void;
}

/**
 * How a client speaks to sidecast once its WebSocket is open: how its first message reads, and
 * how a connection that went live joins the router whose frames that protocol's clients read (and
 * leaves it). Every other step (deadline, authentication, per-user limit, close codes) is the same
 * whatever the protocol.
 */
export interface ClientProtocol {
  /**
   * True when the first message carries only a token, so a connection whose upgrade headers
   * authenticate it (a session cookie) goes without: it is authenticated as soon as it opens.
   */
  readonly tokenOnlyFirstMessage: boolean;
  /** The first message, or undefined for one that is refused like a bad token. */
  readFirstMessage(text: string): FirstMessage | undefined;
  /** Starts sending events to a connection that just went live; anything it greets with first. */
  join(connection: LiveConnection, principal: Principal, first: FirstMessage): void;
  /** Stops sending to it, at whatever point of `join` it is. */
  leave(connection: LiveConnection): void;
  /**
   * Gives a joined connection a new set of content types, in place; whether anything changed.
   * Events of the content types it keeps are not interrupted.
   */
  update(connection: LiveConnection, contentTypeIds: ReadonlySet<number>): boolean;
}

/**
 * The websockets guide's protocol: the whole first message is the token, events are sent bare,
 * nothing greets the client.
 */
export function createGuideProtocol(router: Router<FrameSink>): ClientProtocol {
  return {
    tokenOnlyFirstMessage: true,
    readFirstMessage: (text) => ({ token: text }),
    join: (connection, principal) => router.add(connection, principal.contentTypeIds),
    leave: (connection) => router.remove(connection),
    update: (connection, contentTypeIds) => router.update(connection, contentTypeIds),
  };
}
