/**
 * Protocol v1 from a test's side: a client that offers `sidecast.v1` and sends the JSON first
 * message, and readers for what it receives (one welcome, then event envelopes).
 */
import assert from 'node:assert/strict';
import { connectClient, type TestClient } from './client.js';

export const V1 = 'sidecast.v1';

export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly epoch: string;
  readonly offset: string;
  readonly recoverable: boolean;
  readonly recovered: boolean;
  readonly replayed: number;
}

/** Opens a v1 connection and sends `first` (an object is sent as JSON, a string as it is). */
export function connectV1(url: string, first?: object | string): Promise<TestClient> {
  const text = first === undefined || typeof first === 'string' ? first : JSON.stringify(first);
  return connectClient(url, text, {}, [V1]);
}

/** The first message, checked to be a welcome. */
export async function welcomeOf(client: TestClient): Promise<WelcomeMessage> {
  const [first] = await client.waitForMessages(1);
  const welcome = JSON.parse(first!) as WelcomeMessage;
  assert.equal(welcome.type, 'welcome', `expected a welcome, got ${first}`);
  assert.deepEqual(Object.keys(welcome).sort(), [
    'epoch',
    'offset',
    'recoverable',
    'recovered',
    'replayed',
    'type',
  ]);
  assert.equal(typeof welcome.epoch, 'string');
  assert.equal(typeof welcome.offset, 'string');
  return welcome;
}

/** The exact text protocol v1 frames an event as. */
export function envelope(offset: string, payload: string): string {
  return `{"type":"event","offset":${JSON.stringify(offset)},"event":${payload}}`;
}

export interface ReceivedEvent {
  readonly offset: string;
  /** The payload text, cut out of the frame (checked to be there verbatim). */
  readonly payload: string;
}

/** Reads an envelope, checking that it is exactly the envelope of its payload. */
export function readEnvelope(text: string): ReceivedEvent {
  const prefix = '{"type":"event","offset":';
  assert.ok(text.startsWith(prefix), `not an event envelope: ${text}`);
  const parsed = JSON.parse(text) as { type: string; offset: string; event: unknown };
  assert.equal(typeof parsed.offset, 'string');
  const head = `${prefix}${JSON.stringify(parsed.offset)},"event":`;
  assert.ok(text.startsWith(head) && text.endsWith('}'), `unexpected envelope layout: ${text}`);
  const payload = text.slice(head.length, -1);
  assert.deepEqual(JSON.parse(payload), parsed.event);
  return { offset: parsed.offset, payload };
}

/** The events after the welcome, `count` of them once they have arrived. */
export async function eventsOf(client: TestClient, count: number): Promise<ReceivedEvent[]> {
  const messages = await client.waitForMessages(count + 1);
  return messages.slice(1).map(readEnvelope);
}
