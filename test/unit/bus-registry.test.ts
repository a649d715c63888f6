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
    assert.deepEqual(BUS_KINDS, ['redis', 'redis-streams', 'memory']);
    for (const kind of BUS_KINDS)
      assert.equal(parseArgs(['bus'], ['--bus', kind], {}).options.bus, kind);
    assert.throws(
      () => parseArgs(['bus'], ['--bus', 'kafka'], {}),
      /--bus: expected one of redis, redis-streams, memory, got "kafka"/,
    );
    assert.equal(
      OPTIONS.bus.description,
      'Event bus: redis (shared by every instance), redis-streams (shared by every instance, with history for reconnecting clients) or memory (this process only).',
    );
  });

  it("gives the serve command every driver's options, each from the options table", () => {
    // --redis is shared by both Redis drivers, and listed once.
    assert.deepEqual(BUS_OPTIONS, [
      'bus',
      'redis',
      'channel',
      'stream',
      'history-max-entries',
      'history-max-age',
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
        stream: 'x',
        historyMaxEntries: 10,
        historyMaxAge: 60,
      });
      assert.equal(bus.kind, driver.kind);
      await bus.close();
    }
  });
});
