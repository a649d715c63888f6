/**
 * Protocol v1 recovery on a real server, over a fake bus that keeps history (the real Redis
 * Streams driver has its own test, test/integration/recovery.test.ts): exactly the missed events
 * the user may see, in order, then live ones, with none lost or sent twice while the replay is in
 * flight; every way a replay cannot be honoured answered with recovered false, then live.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import type {
  Bus,
  BusHandler,
  HistoryEntry,
  ReplayResult,
  StreamPosition,
} from '../../src/bus/bus.js';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { closeOf, connectClient, type TestClient } from '../support/client.js';
import { metricReaches } from '../support/metrics.js';
import { event, principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { connectV1, eventsOf, welcomeOf, type ReceivedEvent } from '../support/v1.js';
import { waitFor } from '../support/wait.js';

/**
 * A bus with history in memory: offsets are "1", "2", ... under one epoch; entries at or before
 * `trimmedThrough` are gone; a replay can be held in flight until `release()`.
 */
function createHistoryBus() {
  let handler: BusHandler | undefined;
  const entries: HistoryEntry[] = [];
  let handed: StreamPosition = { epoch: 'epoch-1', offset: '0' };
  let hold: Promise<void> | undefined;
  let release: () => void = () => undefined;
  // overshoot: a replay that reads to the end of the history, past `until`.
  const state = { epoch: 'epoch-1', trimmedThrough: 0, replays: 0, overshoot: false };
  const bus: Bus = {
    kind: 'fake-history',
    describe: () => 'a fake bus with history',
    async start(onMessage) {
      handler = onMessage;
    },
    async publish(payload) {
      const offset = String(entries.length + 1);
      entries.push({ payload, offset });
      queueMicrotask(() => {
        handed = { epoch: state.epoch, offset };
        handler?.(payload, handed);
      });
    },
    status: () => ({ ready: true }),
    async close() {},
    control: createMemoryBus().control,
    history: {
      latest: () => handed,
      compare: (a, b) => Number(a) - Number(b),
      async replay(since, until, limit): Promise<ReplayResult> {
        state.replays++;
        // Read as the history was when asked, as a read that was under way when it restarted.
        const epoch = state.epoch;
        await hold;
        if (since.epoch !== epoch) return { complete: false, gap: 'epoch' };
        if (!/^\d+$/.test(since.offset) || Number(since.offset) > Number(until))
          return { complete: false, gap: 'invalid' };
        if (Number(since.offset) < state.trimmedThrough) return { complete: false, gap: 'trimmed' };
        const range = entries.filter(
          (e) =>
            Number(e.offset) > Number(since.offset) &&
            (state.overshoot || Number(e.offset) <= Number(until)),
        );
        if (range.length > limit) return { complete: false, gap: 'too_many' };
        return { complete: true, entries: range };
      },
    },
  };
  return {
    bus,
    state,
    /** Replays started from now on wait until release(). */
    holdReplays(): void {
      hold = new Promise((resolve) => (release = resolve));
    },
    release(): void {
      hold = undefined;
      release();
    },
  };
}

const authenticator = tableAuthenticator({
  'token-root': principal('1', [1, 2, 3]),
  'token-books': principal('2', [2]),
});

function assertIncreasing(events: readonly ReceivedEvent[], after: string): void {
  let last = Number(after);
  for (const { offset } of events) {
    assert.ok(Number(offset) > last, `offset ${offset} after ${last}`);
    last = Number(offset);
  }
}

describe('protocol v1 recovery from bus history', () => {
  let app: Sidecast;
  let fake: ReturnType<typeof createHistoryBus>;
  const open: TestClient[] = [];

  before(async () => {
    fake = createHistoryBus();
    app = await startTestServer(['--recover-max', '6', '--max-event-bytes', '1024'], {
      authenticator,
      bus: fake.bus,
    });
  });
  after(() => app.close());
  afterEach(async () => {
    fake.release();
    for (const client of open.splice(0)) client.ws.close();
    await waitFor(() => app.server.liveConnectionCount === 0, 5000, 'every client gone');
  });

  async function v1(first: object): Promise<TestClient> {
    const client = await connectV1(app.url, first);
    open.push(client);
    return client;
  }

  /** A root v1 client that saw every event published so far: its messages show what went out. */
  async function watcher(): Promise<TestClient> {
    const client = await v1({ token: 'token-root' });
    await welcomeOf(client);
    return client;
  }

  for (const overshoot of [false, true]) {
    const title = overshoot
      ? 'sends an event once when the replay also read it past where it should end'
      : 'replays exactly the missed events the user may see, then live, none twice';
    it(title, async () => {
      fake.state.overshoot = overshoot;
      const first = await v1({ token: 'token-books' });
      const welcome = await welcomeOf(first);
      assert.equal(welcome.recoverable, true);
      assert.equal(welcome.recovered, false);
      const seen = event(2, { n: 'seen' });
      await fake.bus.publish(seen);
      const [last] = await eventsOf(first, 1);
      first.ws.close();
      await waitFor(() => app.server.liveConnectionCount === 0, 5000, 'the first connection gone');

      const watch = await watcher();
      const missed = [event(2, { n: 1 }), event(3, { n: 'not allowed' }), event(2, { n: 2 })];
      for (const payload of missed) await fake.bus.publish(payload);
      const lastMissed = (await eventsOf(watch, missed.length)).at(-1)!.offset;

      fake.holdReplays();
      const replays = fake.state.replays;
      const back = await v1({
        token: 'token-books',
        since: { epoch: welcome.epoch, offset: last!.offset },
      });
      await waitFor(() => fake.state.replays > replays, 5000, 'the replay to start');
      // Live events while the replay is in flight: held, then sent after the replayed ones.
      const during = [
        event(2, { n: 'live 1' }),
        event(3, { n: 'live, not allowed' }),
        event(2, { n: 'live 2' }),
      ];
      for (const payload of during) await fake.bus.publish(payload);
      await eventsOf(watch, missed.length + during.length);
      assert.deepEqual(back.messages, [], 'nothing before the replay is written');
      fake.release();

      const recovered = await welcomeOf(back);
      assert.equal(recovered.recovered, true);
      assert.equal(recovered.recoverable, true);
      // Read past its end, the replay also holds the live events: each is sent once, from there.
      assert.equal(recovered.replayed, overshoot ? 4 : 2);
      assert.equal(recovered.offset, lastMissed, 'where the live feed was when the replay began');
      const received = await eventsOf(back, 4);
      assert.deepEqual(
        received.map((e) => e.payload),
        [missed[0], missed[2], during[0], during[2]],
      );
      assertIncreasing(received, last!.offset);
      const after = event(2, { n: 'after' });
      await fake.bus.publish(after);
      const all = await eventsOf(back, 5);
      assert.equal(all[4]!.payload, after);
      assert.equal(back.messages.length, 6, 'one welcome and five events, none twice');
      assert.ok(
        (await metricReaches(app.url, 'sidecast_replays_total{outcome="complete"}', 1)) >= 1,
      );
      fake.state.overshoot = false;
    });
  }

  it('replays nothing and says recovered for a client that missed nothing', async () => {
    const client = await v1({ token: 'token-books' });
    const welcome = await welcomeOf(client);
    client.ws.close();
    const back = await v1({
      token: 'token-books',
      since: { epoch: welcome.epoch, offset: welcome.offset },
    });
    const again = await welcomeOf(back);
    assert.deepEqual({ ...again }, { ...welcome, recovered: true });
  });

  for (const [gap, arrange] of [
    ['too_many', () => undefined],
    ['trimmed', () => (fake.state.trimmedThrough = Number.MAX_SAFE_INTEGER)],
    ['epoch', () => (fake.state.epoch = 'epoch-2')],
  ] as const) {
    it(`answers recovered false when the history says ${gap}, then goes live`, async () => {
      const watch = await watcher();
      const base = await welcomeOf(watch);
      // Seven missed events: one more than --recover-max.
      const missed = Array.from({ length: 7 }, (_, n) => event(2, { n }));
      for (const payload of missed) await fake.bus.publish(payload);
      await eventsOf(watch, missed.length);
      arrange();
      try {
        const client = await v1({
          token: 'token-books',
          since: { epoch: base.epoch, offset: base.offset },
        });
        const welcome = await welcomeOf(client);
        assert.equal(welcome.recovered, false);
        assert.equal(welcome.replayed, 0);
        assert.equal(welcome.recoverable, true);
        const live = event(2, { n: 'live' });
        await fake.bus.publish(live);
        const [received] = await eventsOf(client, 1);
        assert.equal(received!.payload, live);
        assert.equal(
          await metricReaches(app.url, `sidecast_replays_total{outcome="${gap}"}`, 1),
          1,
        );
      } finally {
        fake.state.trimmedThrough = 0;
        fake.state.epoch = 'epoch-1';
      }
    });
  }

  it('promises no replay when the history starts again while it is read', async () => {
    const watch = await watcher();
    // An event of the current history first, so that the live feed's position is in it.
    await fake.bus.publish(event(1));
    const [before] = await eventsOf(watch, 1);
    const base = { epoch: fake.state.epoch, offset: before!.offset };
    fake.holdReplays();
    const replays = fake.state.replays;
    const client = await v1({
      token: 'token-books',
      since: { epoch: base.epoch, offset: base.offset },
    });
    await waitFor(() => fake.state.replays > replays, 5000, 'the replay to start');
    fake.state.epoch = 'epoch-2';
    try {
      const live = event(2, { n: 'new history' });
      await fake.bus.publish(live);
      await eventsOf(watch, 2);
      fake.release();
      const welcome = await welcomeOf(client);
      assert.equal(welcome.recovered, false);
      assert.equal(welcome.replayed, 0);
      assert.deepEqual(
        (await eventsOf(client, 1)).map((e) => e.payload),
        [live],
        'the live event that arrived meanwhile still goes',
      );
    } finally {
      fake.state.epoch = 'epoch-1';
    }
  });

  it('answers a since from the future or that is no offset with recovered false', async () => {
    const watch = await watcher();
    const { epoch } = await welcomeOf(watch);
    for (const offset of ['999999', 'garbage', '']) {
      const client = await v1({ token: 'token-books', since: { epoch, offset } });
      const welcome = await welcomeOf(client);
      assert.equal(welcome.recovered, false, offset);
      assert.equal(welcome.replayed, 0);
    }
  });

  it('closes a client as a slow consumer when what it holds during the replay passes --max-buffered', async () => {
    // The limit is --max-buffered (1 MiB) + --max-event-bytes (1024) + 10 bytes: about 1100 events.
    const first = await v1({ token: 'token-books' });
    const base = await welcomeOf(first);
    first.ws.close();
    await waitFor(() => app.server.liveConnectionCount === 0, 5000, 'the first connection gone');
    fake.holdReplays();
    const replays = fake.state.replays;
    const client = await v1({
      token: 'token-books',
      since: { epoch: base.epoch, offset: base.offset },
    });
    await waitFor(() => fake.state.replays > replays, 5000, 'the replay to start');
    const big = event(2, { fill: 'x'.repeat(900) });
    for (let i = 0; i < 1200; i++) await fake.bus.publish(big);
    assert.deepEqual(await closeOf(client), { code: 1008, reason: 'slow consumer' });
    assert.deepEqual(client.messages, [], 'nothing written: neither welcome nor events');
    fake.release();
    await waitFor(() => app.server.liveConnectionCount === 0, 5000, 'the slow client gone');
    // The server carries on.
    const next = await v1({ token: 'token-books' });
    await welcomeOf(next);
    const payload = event(2);
    await fake.bus.publish(payload);
    assert.equal((await eventsOf(next, 1))[0]!.payload, payload);
  });

  it('forgets a client that leaves during its replay', async () => {
    const watch = await watcher();
    const base = await welcomeOf(watch);
    fake.holdReplays();
    const replays = fake.state.replays;
    const client = await connectV1(app.url, {
      token: 'token-books',
      since: { epoch: base.epoch, offset: base.offset },
    });
    await waitFor(() => fake.state.replays > replays, 5000, 'the replay to start');
    client.ws.close();
    await client.closed;
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'only the watcher live');
    fake.release();
    await fake.bus.publish(event(2));
    await eventsOf(watch, 1);
    assert.equal(app.server.liveConnectionCount, 1);
  });

  it('sends guide clients bare payloads on a bus with history', async () => {
    const guide = await connectClient(app.url, 'token-books');
    open.push(guide);
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'the guide client live');
    const payload = event(2);
    await fake.bus.publish(payload);
    assert.deepEqual(await guide.waitForMessages(1), [payload]);
  });
});
