/**
 * Protocol v1 recovery end to end, the part every bus shares (test/integration/recovery*.test.ts):
 * the two users the tests connect as, and a client that comes back, with the position it left
 * at, to a server that has read the events it missed.
 */
import assert from 'node:assert/strict';
import type { Sidecast } from '../../src/app.js';
import type { Authenticator } from '../../src/auth/authenticator.js';
import type { TestClient } from './client.js';
import { event, principal, tableAuthenticator } from './server.js';
import { eventsOf, welcomeOf, type ReceivedEvent } from './v1.js';

/** token-root may see content types 2 and 3; token-books only 2. */
export function recoveryAuthenticator(): Authenticator {
  return tableAuthenticator({
    'token-root': principal('1', [2, 3]),
    'token-books': principal('2', [2]),
  });
}

/** One bus as a recovery test reaches it. */
export interface RecoveryBus {
  /** Publishes as the bus's own publishers do; returns the event's offset. */
  publish(payload: string): Promise<string>;
  /** Opens a v1 connection (closed by the test's own clean-up) and sends `first`. */
  connect(server: Sidecast, first: object): Promise<TestClient>;
}

/**
 * Publishes three events while a token-books client is away (the middle one of a type it may
 * not see), waits for `server` to have read them, then brings the client back there with
 * `left`: it must be told it recovered, with exactly the two it may see replayed, then get a
 * live one. Returns those three events, as the client received them.
 */
export async function resumeWithMissedEvents(
  bus: RecoveryBus,
  server: Sidecast,
  left: { epoch: string; offset: string },
): Promise<ReceivedEvent[]> {
  // The server is known to have read the missed events once its watcher has them.
  const watcher = await bus.connect(server, { token: 'token-root' });
  await welcomeOf(watcher);
  const missed = [event(2, { n: 1 }), event(3, { n: 'not allowed' }), event(2, { n: 2 })];
  const ids: string[] = [];
  for (const payload of missed) ids.push(await bus.publish(payload));
  await eventsOf(watcher, missed.length);

  const back = await bus.connect(server, { token: 'token-books', since: left });
  const resumed = await welcomeOf(back);
  assert.equal(resumed.recovered, true);
  assert.equal(resumed.replayed, 2);
  assert.equal(resumed.epoch, left.epoch, 'one history, whichever server');
  const live = event(2, { n: 'live' });
  const liveId = await bus.publish(live);
  const expected = [
    { offset: ids[0]!, payload: missed[0]! },
    { offset: ids[2]!, payload: missed[2]! },
    { offset: liveId, payload: live },
  ];
  assert.deepEqual(await eventsOf(back, 3), expected);
  return expected;
}
