import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import {
  createClient,
  type ClientOptions,
  type PositionStorage,
  type StateChange,
  type Welcome,
} from '../../src/client/index.js';
import { AUTH_FAILED_REASON, CloseCodes } from '../../src/errors.js';
import { FakeSocket } from '../support/fake-socket.js';

const latest = () => FakeSocket.all.at(-1)!;
const settle = async () => {
  for (let i = 0; i < 5; i++) await tick();
};

/** An in-memory sessionStorage. */
function fakeStorage(): PositionStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
  };
}

function start(overrides: Partial<ClientOptions> = {}) {
  const states: StateChange[] = [];
  const events: [unknown, string][] = [];
  const welcomes: Welcome[] = [];
  let tokens = 0;
  const client = createClient({
    url: 'ws://sidecast.test/',
    WebSocket: FakeSocket,
    protocol: 'v1',
    getToken: async () => `token-${++tokens}`,
    backoff: { initialMs: 1000, maxMs: 8000, factor: 2 },
    onEvent: (event, raw) => events.push([event, raw]),
    onState: (change) => states.push(change),
    onWelcome: (welcome) => welcomes.push(welcome),
    ...overrides,
  });
  return { client, states, events, welcomes };
}

/** Opens the newest socket and lets the client send its first message. */
async function accept(): Promise<FakeSocket> {
  const socket = latest();
  socket.open();
  await settle();
  return socket;
}

/** Ends the current connection the way a dropped network does, and waits out the backoff. */
function drop(states: StateChange[]): void {
  latest().end(1006);
  mock.timers.tick(states.at(-1)!.delayMs!);
}

describe('client, protocol v1', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    mock.method(Math, 'random', () => 0.9999);
  });
  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  it('offers sidecast.v1, sends the token as JSON without since, and opens on the welcome', async () => {
    const { client, states, welcomes } = start();
    await settle();
    const socket = await accept();
    assert.deepEqual(socket.protocols, [['sidecast.v1']]);
    assert.deepEqual(socket.hello(), { token: 'token-1' });
    assert.equal(client.state, 'connecting', 'sent is not accepted: v1 waits for the welcome');
    socket.welcome({ epoch: 'e1', offset: '5-0' });
    assert.equal(client.state, 'open');
    assert.deepEqual(states.at(-1), { state: 'open', recovered: false, gap: false });
    assert.deepEqual(welcomes, [
      { epoch: 'e1', offset: '5-0', recoverable: true, recovered: false, replayed: 0, gap: false },
    ]);
    assert.deepEqual(client.position, { epoch: 'e1', offset: '5-0' });
    client.close();
  });

  it('delivers each payload parsed and exactly as published, and remembers its offset', async () => {
    const { client, events } = start();
    await settle();
    const socket = await accept();
    socket.welcome();
    const raw = '{"model": "book", "content_type_id": 7, "object": "Caf\\u00e9"}';
    socket.event('7-0', raw);
    assert.deepEqual(events, [[{ model: 'book', content_type_id: 7, object: 'Café' }, raw]]);
    assert.deepEqual(client.position, { epoch: 'e1', offset: '7-0' });
    // Another layout still delivers the event; its text is then the payload's JSON.
    socket.message('{"event": {"a": [1, 2]}, "offset": "8-0", "type": "event", "extra": true}');
    assert.deepEqual(events[1], [{ a: [1, 2] }, '{"a":[1,2]}']);
    assert.deepEqual(client.position, { epoch: 'e1', offset: '8-0' });
    client.close();
  });

  it('resumes from the last event, or from the welcome when none came', async () => {
    const { client, states } = start();
    await settle();
    (await accept()).welcome({ epoch: 'e1', offset: '3-0' });
    drop(states);
    const second = await accept();
    assert.deepEqual(second.hello(), { token: 'token-2', since: { epoch: 'e1', offset: '3-0' } });
    second.welcome({ epoch: 'e1', offset: '3-0', recovered: true });
    second.event('4-0', '{"n": 4}');
    second.event('9-1', '{"n": 9}');
    drop(states);
    const third = await accept();
    assert.deepEqual(third.hello(), { token: 'token-3', since: { epoch: 'e1', offset: '9-1' } });
    client.close();
  });

  it('reports a recovery with its replay, and a gap when the position was not honoured', async () => {
    const { client, states, welcomes, events } = start();
    await settle();
    (await accept()).welcome({ offset: '1-0' });
    drop(states);
    const second = await accept();
    second.welcome({ offset: '20-0', recovered: true, replayed: 2 });
    assert.deepEqual(states.at(-1), { state: 'open', recovered: true, gap: false });
    assert.deepEqual(welcomes.at(-1), {
      epoch: 'e1',
      offset: '20-0',
      recoverable: true,
      recovered: true,
      replayed: 2,
      gap: false,
    });
    // Until the replay is over, the welcome's position would skip what is still to come.
    assert.deepEqual(client.position, { epoch: 'e1', offset: '1-0' });
    second.event('5-0', '{"n": 5}');
    assert.deepEqual(client.position, { epoch: 'e1', offset: '5-0' });
    second.event('12-0', '{"n": 12}');
    // Caught up: the live feed starts after the welcome's offset.
    assert.deepEqual(client.position, { epoch: 'e1', offset: '20-0' });
    assert.equal(events.length, 2);

    drop(states);
    const third = await accept();
    assert.deepEqual(third.hello(), { token: 'token-3', since: { epoch: 'e1', offset: '20-0' } });
    third.welcome({ epoch: 'e2', offset: '0-1', recovered: false });
    assert.deepEqual(states.at(-1), { state: 'open', recovered: false, gap: true });
    assert.equal(welcomes.at(-1)!.gap, true);
    assert.deepEqual(client.position, { epoch: 'e2', offset: '0-1' });
    client.close();
  });

  it('resumes mid-replay from the last replayed event', async () => {
    const { client, states } = start();
    await settle();
    (await accept()).welcome({ offset: '1-0' });
    drop(states);
    const second = await accept();
    second.welcome({ offset: '20-0', recovered: true, replayed: 3 });
    second.event('5-0', '{}');
    drop(states);
    assert.deepEqual((await accept()).hello(), {
      token: 'token-3',
      since: { epoch: 'e1', offset: '5-0' },
    });
    client.close();
  });

  it('keeps the position in the storage given, so a reload resumes', async () => {
    const storage = fakeStorage();
    const first = start({ storage });
    await settle();
    const socket = await accept();
    socket.welcome({ epoch: 'e7', offset: '1-0' });
    socket.event('2-0', '{}');
    assert.deepEqual(JSON.parse(storage.items.get('sidecast.position')!), {
      epoch: 'e7',
      offset: '2-0',
    });
    first.client.close();

    // The reloaded page: its very first connection asks to resume, and is told whether it did.
    const reloaded = start({ storage });
    assert.deepEqual(reloaded.client.position, { epoch: 'e7', offset: '2-0' });
    await settle();
    const again = await accept();
    assert.deepEqual(again.hello(), { token: 'token-1', since: { epoch: 'e7', offset: '2-0' } });
    again.welcome({ epoch: 'e7', offset: '2-0', recovered: true });
    assert.equal(reloaded.welcomes[0]!.gap, false);
    reloaded.client.close();

    // Its own key, so two clients on a page do not share one position.
    const other = start({ storage, storageKey: 'admin-feed' });
    await settle();
    const own = await accept();
    assert.deepEqual(own.hello(), { token: 'token-1' });
    own.welcome({ epoch: 'e7', offset: '9-0' });
    assert.equal(JSON.parse(storage.items.get('admin-feed')!).offset, '9-0');
    assert.equal(JSON.parse(storage.items.get('sidecast.position')!).offset, '2-0');
    other.client.close();
  });

  it('falls back to memory when the storage fails or holds something else', async () => {
    const broken: PositionStorage = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    };
    const { client, states } = start({ storage: broken });
    await settle();
    (await accept()).welcome({ offset: '4-0' });
    drop(states);
    assert.deepEqual((await accept()).hello(), {
      token: 'token-2',
      since: { epoch: 'e1', offset: '4-0' },
    });
    client.close();

    for (const saved of [
      'not json',
      'null',
      '[]',
      '{"epoch": 1, "offset": "2"}',
      '{"epoch":"e"}',
    ]) {
      const storage = fakeStorage();
      storage.items.set('sidecast.position', saved);
      const fresh = start({ storage });
      assert.equal(fresh.client.position, undefined, saved);
      fresh.client.close();
    }
  });

  it('ignores malformed or unknown frames without failing', async () => {
    const { client, events, welcomes } = start();
    await settle();
    const socket = await accept();
    // Before the welcome there is no position to record an event against.
    socket.event('1-0', '{"early": true}');
    for (const data of [
      'not json',
      'null',
      '42',
      '"welcome"',
      '[]',
      '{}',
      '{"type": "welcome", "epoch": 1, "offset": "1-0"}',
      '{"type": "welcome", "epoch": "e1"}',
      new Uint8Array([123, 125]),
    ]) {
      socket.message(data);
    }
    assert.equal(client.state, 'connecting');
    socket.welcome({ replayed: 'many', recoverable: 'yes' });
    assert.deepEqual(welcomes[0], {
      epoch: 'e1',
      offset: '0-0',
      recoverable: false,
      recovered: false,
      replayed: 0,
      gap: false,
    });
    for (const data of [
      '{"type":"event","offset":"2-0","event":{"broken"}',
      '{"type":"event","offset":"2-0","event":}',
      '{"type":"event","offset":2,"event":{}}',
      '{"type":"event","offset":"2-0"}',
      '{"type":"event","offset":"\\x","event":{}}',
      '{"type":"ping"}',
    ]) {
      socket.message(data);
    }
    assert.deepEqual(events, []);
    assert.deepEqual(client.position, { epoch: 'e1', offset: '0-0' });
    socket.event('3-0', '{"ok": 1}');
    assert.deepEqual(events, [[{ ok: 1 }, '{"ok": 1}']]);
    assert.equal(client.state, 'open');
    client.close();
  });

  it('stops as unauthorized after two refused tokens, as the guide protocol does', async () => {
    const { client, states } = start();
    await settle();
    (await accept()).end(CloseCodes.internalError, AUTH_FAILED_REASON);
    assert.equal(states.at(-1)!.delayMs, 0);
    mock.timers.tick(0);
    // A welcome means the token was accepted: the next refusal is a first one again.
    const welcomed = await accept();
    welcomed.welcome();
    welcomed.end(CloseCodes.internalError, AUTH_FAILED_REASON);
    assert.equal(client.state, 'reconnecting');
    mock.timers.tick(0);
    (await accept()).end(CloseCodes.internalError, AUTH_FAILED_REASON);
    assert.equal(client.state, 'unauthorized');
    mock.timers.tick(60_000);
    await settle();
    assert.equal(FakeSocket.all.length, 3);
  });

  it('backs off as the guide protocol does: a welcome alone does not reset it, an event does', async () => {
    const { client, states } = start();
    await settle();
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = await accept();
      socket.welcome();
      socket.end(CloseCodes.tryAgainLater, 'try again later');
      delays.push(states.at(-1)!.delayMs!);
      mock.timers.tick(delays.at(-1)!);
    }
    assert.deepEqual(delays, [999, 1999, 3999]);
    const socket = await accept();
    socket.welcome();
    socket.event('1-0', '{}');
    socket.end(1006);
    assert.equal(states.at(-1)!.delayMs, 999);
    client.close();
  });

  it('the guide protocol is unchanged: no subprotocol, the bare token, frames as events', async () => {
    const { client, events, welcomes } = start({ protocol: undefined, storage: fakeStorage() });
    await settle();
    const socket = await accept();
    assert.deepEqual(socket.protocols, [], 'constructed with the URL alone');
    assert.deepEqual(socket.sent, ['token-1']);
    assert.equal(client.state, 'open');
    const frame = '{"type":"welcome","epoch":"e","offset":"1","recovered":true}';
    socket.message(frame);
    assert.deepEqual(events, [[JSON.parse(frame), frame]]);
    assert.deepEqual(welcomes, []);
    assert.equal(client.position, undefined);
    client.close();
  });
});
