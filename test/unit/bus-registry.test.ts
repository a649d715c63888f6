/**
 * The bus drivers' registry: --bus offers each driver, every command that takes --bus takes
 * every driver's options, and each of them is in the one options table.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SERVE_OPTIONS } from '../../src/app.js';
import {
  BUS_DRIVERS,
  BUS_KINDS,
  BUS_OPTIONS,
  busDriver,
  createBus,
} from '../../src/bus/create-bus.js';
import { OPTIONS, parseArgs } from '../../src/config.js';

describe('the bus driver registry', () => {
  it('offers every driver to --bus, and nothing else', () => {
    assert.deepEqual(BUS_KINDS, [
      'redis',
      'redis-streams',
      'nats',
      'nats-jetstream',
      'redis-cluster',
      'memory',
    ]);
    for (const kind of BUS_KINDS)
      assert.equal(parseArgs(['bus'], ['--bus', kind], {}).options.bus, kind);
    assert.throws(
      () => parseArgs(['bus'], ['--bus', 'kafka'], {}),
      /--bus: expected one of redis, redis-streams, nats, nats-jetstream, redis-cluster, memory, got "kafka"/,
    );
    assert.equal(
      OPTIONS.bus.description,
      'Event bus: redis (shared by every instance), redis-streams (shared by every instance, with history for reconnecting clients), nats (a NATS cluster, each instance receiving only the content types its clients may see), nats-jetstream (a NATS cluster with a JetStream stream, with history for reconnecting clients), redis-cluster (a Redis Cluster, sharded pub/sub, each instance receiving only the content types its clients may see) or memory (this process only).',
    );
  });

  it("gives the serve command every driver's options, each from the options table", () => {
    // --redis is shared by both Redis drivers, and listed once.
    assert.deepEqual(BUS_OPTIONS, [
      'bus',
      'redis',
      'channel',
      'control-channel',
      'stream',
      'history-max-entries',
      'history-max-age',
      'nats',
      'nats-subject-prefix',
      'nats-stream',
      'nats-stream-replicas',
      'redis-cluster',
    ]);
    for (const name of BUS_OPTIONS) {
      assert.ok(name in OPTIONS, name);
      assert.ok((SERVE_OPTIONS as readonly string[]).includes(name), name);
    }
  });

  it('makes a bus of the kind asked for', async () => {
    for (const driver of BUS_DRIVERS) {
      assert.equal(busDriver(driver.kind), driver);
      const bus = createBus({
        bus: driver.kind,
        redis: 'redis://127.0.0.1:1/0',
        channel: 'x',
        controlChannel: 'x:control',
        stream: 'x',
        historyMaxEntries: 10,
        historyMaxAge: 60,
        nats: 'nats://127.0.0.1:1',
        natsSubjectPrefix: 'x',
        natsStream: 'X',
        natsStreamReplicas: 1,
        redisCluster: 'redis://127.0.0.1:1',
      });
      assert.equal(bus.kind, driver.kind);
      await bus.close();
    }
  });
});
