/**
 * optionsFrom: typed options built in code get the command line's defaults and its checks, so
 * the demo (or an embedder) cannot start a server `sidecast serve` would refuse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SERVE_OPTIONS } from '../../src/app.js';
import { OPTIONS, optionsFrom, parseArgs } from '../../src/config.js';

describe('optionsFrom', () => {
  it('fills every option not given with its default, as parseArgs does', () => {
    assert.deepEqual(optionsFrom(SERVE_OPTIONS), parseArgs(SERVE_OPTIONS, [], {}).options);
    const options = optionsFrom(SERVE_OPTIONS, { port: 0, bus: 'memory' });
    assert.equal(options.port, 0);
    assert.equal(options.bus, 'memory');
    assert.equal(options.host, OPTIONS.host.defaultValue);
    assert.deepEqual(options.allowedOrigins, OPTIONS['allowed-origins'].defaultValue);
    assert.ok(Object.isFrozen(options));
  });

  it('gives the same options as the flags that say the same', () => {
    const typed = optionsFrom(SERVE_OPTIONS, {
      port: 0,
      allowedOrigins: ['https://a.example', 'https://*.b.example'],
      drainSeconds: 0.5,
      maxBuffered: 65536,
      waitForBus: true,
      logLevel: 'silent',
    });
    const flags = ['--port', '0', '--allowed-origins', 'https://a.example, https://*.b.example'];
    flags.push('--drain-seconds', '0.5', '--max-buffered', '64KiB', '--wait-for-bus', 'yes');
    flags.push('--log-level', 'silent');
    assert.deepEqual(typed, parseArgs(SERVE_OPTIONS, flags, {}).options);
  });

  it('refuses a value the command line would refuse, with the same message', () => {
    for (const [values, flags] of [
      [{ port: 70_000 }, ['--port', '70000']],
      [{ port: 1.5 }, ['--port', '1.5']],
      [{ authTimeout: -1 }, ['--auth-timeout', '-1']],
      [{ maxEventBytes: 16 * 1024 * 1024 }, ['--max-event-bytes', String(16 * 1024 * 1024)]],
    ] as const) {
      const fromFlags = (() => {
        try {
          parseArgs(SERVE_OPTIONS, flags, {});
        } catch (error) {
          return (error as Error).message;
        }
        assert.fail(`${flags.join(' ')} was accepted`);
      })();
      assert.throws(() => optionsFrom(SERVE_OPTIONS, values), { message: fromFlags });
    }
  });

  it('checks environment-only keys too, and takes an empty one as unset', () => {
    assert.throws(() => optionsFrom(['publish-key'], { publishKey: ' spaced ' }), /PUBLISH_KEY/);
    assert.equal(optionsFrom(['publish-key'], { publishKey: '' }).publishKey, '');
  });
});
