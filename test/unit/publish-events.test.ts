/**
 * publishEvents(), the one way sidecast's own entry points publish (POST /publish and
 * `sidecast publish`): in order, each after the one before, stopping at the first failure with
 * one message that names the bus and how far the batch got.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bus } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create-bus.js';
import { PublishError, publishEvents, publishFailed } from '../../src/bus/publish.js';
import { isSidecastError } from '../../src/errors.js';

const BUS = 'a test bus';

/** A bus that records what it is given and refuses the payloads `failing` names, once each. */
function recordingBus(failing: ReadonlySet<string> = new Set(), error?: unknown) {
  const published: string[] = [];
  const refused = new Set<string>();
  let active = 0;
  const bus: Pick<Bus, 'publish'> = {
    async publish(payload) {
      assert.equal(active++, 0, 'one publish at a time');
      await new Promise((resolve) => setImmediate(resolve));
      active--;
      if (failing.has(payload) && !refused.has(payload)) {
        refused.add(payload);
        throw error ?? publishFailed(BUS, 'connection reset', new Error('ECONNRESET'));
      }
      published.push(payload);
    },
  };
  return { bus, published };
}

function caught(promise: Promise<unknown>): Promise<PublishError> {
  return promise.then(
    () => assert.fail('expected the batch to fail'),
    (error: unknown) => {
      assert.ok(error instanceof PublishError, String(error));
      return error;
    },
  );
}

describe('publishEvents', () => {
  it('publishes every event, in order, one after the other', async () => {
    const { bus, published } = recordingBus();
    const events = ['a', 'b', 'c', 'd'];
    await publishEvents(bus, events);
    assert.deepEqual(published, events);
  });

  it('stops at the first failure, even if the bus would take the next ones', async () => {
    const { bus, published } = recordingBus(new Set(['c']));
    const error = await caught(publishEvents(bus, ['a', 'b', 'c', 'd', 'e']));
    assert.deepEqual(published, ['a', 'b']);
    assert.ok(isSidecastError(error, 'BUS_UNAVAILABLE'));
    assert.equal(error.status, 503);
    assert.equal(error.published, 2);
    assert.equal(error.total, 5);
    assert.equal(
      error.message,
      'cannot publish to a test bus: connection reset (2 of 5 events were published)',
    );
  });

  it('says nothing of progress for a single event', async () => {
    const { bus } = recordingBus(new Set(['only']));
    const error = await caught(publishEvents(bus, ['only']));
    assert.equal(error.message, 'cannot publish to a test bus: connection reset');
    assert.equal(error.published, 0);
  });

  it('takes any other failure of the bus for the bus being unavailable', async () => {
    const { bus } = recordingBus(new Set(['b']), new Error('socket hang up'));
    const error = await caught(publishEvents(bus, ['a', 'b']));
    assert.ok(isSidecastError(error, 'BUS_UNAVAILABLE'));
    assert.equal(error.message, 'cannot publish: socket hang up (1 of 2 events were published)');
    assert.equal((error.cause as Error).message, 'socket hang up');
  });

  // The redis-streams driver's options, which createBus takes whichever bus it makes.
  const STREAM_OPTIONS = {
    stream: 'events',
    controlChannel: 'sidecast:control',
    historyMaxEntries: 10,
    historyMaxAge: 60,
    nats: 'nats://127.0.0.1:1',
    natsSubjectPrefix: 'sidecast',
    natsStream: 'SIDECAST',
    natsStreamReplicas: 1,
    redisCluster: 'redis://127.0.0.1:1',
  };

  it('names each driver as its describe() does', () => {
    const redis = createBus({
      bus: 'redis',
      redis: 'redis://user:secret@127.0.0.1:6390/2',
      channel: 'news',
      ...STREAM_OPTIONS,
    });
    assert.equal(redis.describe(), 'Redis at redis://user:***@127.0.0.1:6390/2, channel "news"');
    const streams = createBus({
      bus: 'redis-streams',
      redis: 'redis://user:secret@127.0.0.1:6390/2',
      channel: '',
      ...STREAM_OPTIONS,
      stream: 'news',
    });
    assert.equal(streams.describe(), 'Redis at redis://user:***@127.0.0.1:6390/2, stream "news"');
    const memory = createBus({ bus: 'memory', redis: '', channel: '', ...STREAM_OPTIONS });
    assert.equal(memory.describe(), 'the memory bus of this process');
  });
});
