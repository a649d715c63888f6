import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { createClient, type ClientOptions, type StateChange } from '../../src/client/index.js';
import { AUTH_FAILED_REASON, CloseCodes } from '../../src/errors.js';
import { FakeSocket } from '../support/fake-socket.js';

const latest = () => FakeSocket.all.at(-1)!;
/** Lets the client's promise chain (getToken, then send) run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await tick();
};

function start(overrides: Partial<ClientOptions> = {}) {
  const states: StateChange[] = [];
  const events: [unknown, string][] = [];
  let tokens = 0;
  const getToken = mock.fn(async () => `token-${++tokens}`);
  const client = createClient({
    url: 'ws://sidecast.test/',
    WebSocket: FakeSocket,
    getToken,
    backoff: { initialMs: 1000, maxMs: 8000, factor: 2 },
    onEvent: (event, raw) => events.push([event, raw]),
    onState: (change) => states.push(change),
    ...overrides,
  });
  return { client, states, events, getToken, names: () => states.map((change) => change.state) };
}

/** Opens the newest socket and lets the client send its token. */
async function accept(): Promise<FakeSocket> {
  const socket = latest();
  socket.open();
  await settle();
  return socket;
}

describe('client connection state', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    // Full jitter draws from Math.random: pin it near 1 so each delay sits just below its ceiling.
    mock.method(Math, 'random', () => 0.9999);
  });
  afterEach(() => {
    mock.timers.reset();
    mock.restoreAll();
  });

  it('opens, sends a fresh token, then delivers parsed events with their raw text', async () => {
    const { client, names, events, getToken } = start();
    assert.equal(client.state, 'connecting');
    await settle();
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(getToken.mock.callCount(), 0, 'no token is asked for before the socket opens');
    const socket = await accept();
    assert.deepEqual(socket.sent, ['token-1']);
    assert.equal(client.state, 'open');
    const raw = '{"model": "book", "content_type_id": 7, "object": "Caf\\u00e9"}';
    socket.message(raw);
    socket.message('not json');
    assert.deepEqual(events, [[{ model: 'book', content_type_id: 7, object: 'Café' }, raw]]);
    assert.deepEqual(names(), ['connecting', 'open']);
    client.close();
    assert.equal(socket.closedByClient, 1000);
    assert.deepEqual(names(), ['connecting', 'open', 'closed']);
  });

  it('backs off exponentially with a cap while the server cannot be reached', async () => {
    const { states } = start();
    await settle();
    const ceilings = [1000, 2000, 4000, 8000, 8000];
    for (const ceiling of ceilings) {
      const before = FakeSocket.all.length;
      latest().refuse();
      const delay = states.at(-1)!.delayMs!;
      assert.equal(delay, Math.floor(0.9999 * ceiling));
      mock.timers.tick(delay - 1);
      assert.equal(FakeSocket.all.length, before, 'no attempt before the delay is over');
      mock.timers.tick(1);
      assert.equal(FakeSocket.all.length, before + 1);
    }
    assert.deepEqual(
      states.slice(-2).map((change) => change.state),
      ['reconnecting', 'connecting'],
    );
  });

  it('comes back promptly with a new token after a restart (1012) or a drain (1001)', async () => {
    const { states, getToken } = start();
    await settle();
    // Three refused attempts first: the restart must not inherit their long delay.
    for (let i = 0; i < 3; i++) {
      latest().refuse();
      mock.timers.tick(states.at(-1)!.delayMs!);
    }
    for (const code of [CloseCodes.serviceRestart, CloseCodes.goingAway]) {
      const socket = await accept();
      socket.end(code, 'server shutting down');
      assert.deepEqual(states.at(-1), {
        state: 'reconnecting',
        code,
        reason: 'server shutting down',
        delayMs: 999,
      });
      mock.timers.tick(999);
    }
    const socket = await accept();
    assert.equal(getToken.mock.callCount(), 3);
    assert.deepEqual(socket.sent, ['token-3']);
  });

  it('keeps backing off on 1013 even though every socket opened', async () => {
    const { states } = start();
    await settle();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const socket = await accept();
      socket.end(CloseCodes.tryAgainLater, 'try again later');
      delays.push(states.at(-1)!.delayMs!);
      mock.timers.tick(delays.at(-1)!);
    }
    assert.deepEqual(delays, [999, 1999, 3999, 7999]);
  });

  it('restarts the backoff after a connection that delivered events', async () => {
    const { states } = start();
    await settle();
    for (let i = 0; i < 3; i++) {
      latest().refuse();
      mock.timers.tick(states.at(-1)!.delayMs!);
    }
    const socket = await accept();
    socket.message('{"content_type_id": 1}');
    socket.end(1006);
    assert.equal(states.at(-1)!.delayMs, 999);
  });

  it('asks for one new token after "authentication failed", then stops as unauthorized', async () => {
    const { client, states, getToken, names } = start();
    await settle();
    const first = await accept();
    first.end(CloseCodes.internalError, AUTH_FAILED_REASON);
    assert.deepEqual(states.at(-1), {
      state: 'reconnecting',
      code: 1011,
      reason: AUTH_FAILED_REASON,
      delayMs: 0,
    });
    mock.timers.tick(0);
    const second = await accept();
    assert.deepEqual(second.sent, ['token-2']);
    second.end(CloseCodes.internalError, AUTH_FAILED_REASON);
    assert.equal(client.state, 'unauthorized');
    assert.deepEqual(states.at(-1), {
      state: 'unauthorized',
      code: 1011,
      reason: AUTH_FAILED_REASON,
    });
    mock.timers.tick(24 * 3600 * 1000);
    await settle();
    assert.equal(FakeSocket.all.length, 2, 'no attempt after unauthorized');
    assert.equal(getToken.mock.callCount(), 2);
    client.close();
    assert.deepEqual(names().slice(-2), ['unauthorized', 'closed']);
  });

  it('forgives a refused token once the next connection proved healthy', async () => {
    const { client, states } = start();
    await settle();
    (await accept()).end(CloseCodes.internalError, AUTH_FAILED_REASON);
    mock.timers.tick(0);
    const good = await accept();
    good.message('{"content_type_id": 1}');
    good.end(CloseCodes.serviceRestart);
    mock.timers.tick(states.at(-1)!.delayMs!);
    (await accept()).end(CloseCodes.internalError, AUTH_FAILED_REASON);
    assert.equal(client.state, 'reconnecting');
    // 1011 with another reason is a server fault, not a verdict on the token.
    mock.timers.tick(0);
    (await accept()).end(CloseCodes.internalError, 'unexpected condition');
    assert.equal(client.state, 'reconnecting');
    client.close();
  });

  it('reports a getToken() failure and retries; no token at all means unauthorized', async () => {
    const failure = new Error('token endpoint answered 502');
    let calls = 0;
    const { client, states } = start({
      getToken: async () => {
        calls++;
        if (calls === 1) throw failure;
        return calls === 2 ? 'token-ok' : null;
      },
    });
    await settle();
    const first = await accept();
    assert.equal(first.closedByClient, 1000, 'the socket without a token is closed');
    assert.deepEqual(states.at(-1), { state: 'reconnecting', error: failure, delayMs: 999 });
    mock.timers.tick(999);
    const second = await accept();
    assert.deepEqual(second.sent, ['token-ok']);
    second.end(CloseCodes.serviceRestart);
    mock.timers.tick(states.at(-1)!.delayMs!);
    const third = await accept();
    assert.deepEqual(third.sent, []);
    assert.equal(client.state, 'unauthorized');
    assert.equal(third.closedByClient, 1000);
  });

  it('reconnects at once when the browser comes back online', async () => {
    const network = new EventTarget();
    Object.defineProperty(globalThis, 'window', { value: network, configurable: true });
    try {
      const { client, states } = start({ backoff: { initialMs: 10_000, maxMs: 80_000 } });
      await settle();
      latest().refuse();
      mock.timers.tick(states.at(-1)!.delayMs!);
      latest().refuse();
      assert.equal(states.at(-1)!.delayMs, 19_998);
      network.dispatchEvent(new Event('online'));
      assert.equal(FakeSocket.all.length, 3);
      assert.equal(client.state, 'connecting');
      // The failures were the network's: the backoff starts over.
      latest().refuse();
      assert.equal(states.at(-1)!.delayMs, 9999);
      mock.timers.tick(9999);
      // While connected, 'online' changes nothing.
      await accept();
      network.dispatchEvent(new Event('online'));
      assert.equal(FakeSocket.all.length, 4);
      client.close();
      network.dispatchEvent(new Event('online'));
      latest().refuse();
      assert.equal(FakeSocket.all.length, 4);
      assert.equal(client.state, 'closed');
    } finally {
      Reflect.deleteProperty(globalThis, 'window');
    }
  });

  it('close() during a wait, a getToken() or before the first attempt leaves nothing running', async () => {
    const early = start();
    early.client.close();
    await settle();
    assert.equal(FakeSocket.all.length, 0, 'closed before the first attempt');

    const waiting = start();
    await settle();
    latest().refuse();
    waiting.client.close();
    mock.timers.tick(60_000);
    assert.equal(FakeSocket.all.length, 1);

    let release: (token: string) => void = () => undefined;
    const pending = start({
      getToken: () => new Promise<string>((resolve) => (release = resolve)),
    });
    await settle();
    latest().open();
    await settle();
    pending.client.close();
    release('late-token');
    await settle();
    assert.deepEqual(latest().sent, [], 'a token that arrives after close() is not sent');
    assert.equal(pending.client.state, 'closed');
  });
});

describe('client without fake timers', () => {
  it('leaves no timer behind after close()', async () => {
    FakeSocket.all = [];
    const { client } = start({ backoff: { initialMs: 50_000, maxMs: 50_000 } });
    await settle();
    latest().refuse();
    assert.ok(process.getActiveResourcesInfo().includes('Timeout'));
    client.close();
    assert.ok(!process.getActiveResourcesInfo().includes('Timeout'));
  });

  it('needs a WebSocket implementation', () => {
    assert.throws(
      () => createClient({ url: 'ws://x/', getToken: () => 't' }),
      /no WebSocket available/,
    );
  });
});
