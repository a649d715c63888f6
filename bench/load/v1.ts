/**
 * Reading protocol v1 frames in the load generator without parsing every event: the welcome is
 * parsed as JSON (one per connection), an event envelope only up to the end of its offset.
 */

export interface Position {
  readonly epoch: string;
  readonly offset: string;
}

export interface WelcomeFrame {
  readonly epoch: string;
  readonly offset: string;
  readonly recoverable: boolean;
  readonly recovered: boolean;
  readonly replayed: number;
}

export type V1Frame =
  | { readonly kind: 'welcome'; readonly welcome: WelcomeFrame }
  | { readonly kind: 'event'; readonly offset: string }
  | { readonly kind: 'other' };

const EVENT_PREFIX = Buffer.from('{"type":"event","offset":"');
const WELCOME_PREFIX = Buffer.from('{"type":"welcome"');
const OTHER: V1Frame = { kind: 'other' };

function startsWith(data: Buffer, start: number, end: number, prefix: Buffer): boolean {
  return (
    end - start >= prefix.length &&
    data.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0
  );
}

export function readV1Frame(data: Buffer, start: number, end: number): V1Frame {
  if (startsWith(data, start, end, EVENT_PREFIX)) {
    const from = start + EVENT_PREFIX.length;
    const to = data.indexOf(0x22 /* " */, from);
    if (to === -1 || to >= end) return OTHER;
    return { kind: 'event', offset: data.toString('latin1', from, to) };
  }
  if (startsWith(data, start, end, WELCOME_PREFIX)) {
    const welcome = JSON.parse(data.toString('utf8', start, end)) as WelcomeFrame;
    return { kind: 'welcome', welcome };
  }
  return OTHER;
}

/** The first message of a v1 connection, resuming after `since` when given. */
export function firstMessage(token: string, since: Position | undefined): string {
  return JSON.stringify(since ? { token, since } : { token });
}

const SEQ = Buffer.from('"bench_seq": ');

/** The publisher's sequence number of a benchmark event (0 when there is none). */
export function benchSeq(data: Buffer, start: number, end: number): number {
  const at = data.indexOf(SEQ, start);
  if (at === -1 || at >= end) return 0;
  let i = at + SEQ.length;
  let value = 0;
  while (i < end && data[i]! >= 0x30 && data[i]! <= 0x39) value = value * 10 + data[i++]! - 0x30;
  return value;
}
