import type { StreamPosition } from '../bus/bus.js';

/**
 * Protocol v1's event frame text: the payload goes in verbatim, unparsed, so the client reads the
 * publisher's bytes exactly as a guide client does, and building it costs one concatenation.
 */
export function eventEnvelope(offset: string, payload: string): string {
  return `{"type":"event","offset":${JSON.stringify(offset)},"event":${payload}}`;
}

export interface Welcome {
  /** Where the live feed starts after. */
  readonly position: StreamPosition;
  readonly recoverable: boolean;
  readonly recovered: boolean;
  readonly replayed: number;
}

/** The one message a v1 client gets after authentication, before any event. */
export function welcomeMessage(welcome: Welcome): string {
  return JSON.stringify({
    type: 'welcome',
    epoch: welcome.position.epoch,
    offset: welcome.position.offset,
    recoverable: welcome.recoverable,
    recovered: welcome.recovered,
    replayed: welcome.replayed,
  });
}
