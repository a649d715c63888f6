import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startSidecast, type Sidecast } from '../../src/app.js';
import type { Authenticator, Credential, Principal } from '../../src/auth/authenticator.js';
import { authFailed, authUnavailable, SidecastError } from '../../src/errors.js';
import { connectClient } from '../support/client.js';
import { metric, scrapeMetrics } from '../support/metrics.js';
import { captureLogs, httpGet } from '../support/observe.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

/** Tokens decide the outcome: "ok-*" succeed, "down" has no database, "hang" never answers. */
function scriptedAuthenticator(): Authenticator & {
  running: number;
  peak: number;
  healthy: boolean;
} {
  const self = {
    running: 0,
    peak: 0,
    healthy: true,
    async authenticate({ token }: Credential): Promise<Principal> {
      self.running++;
      self.peak = Math.max(self.peak, self.running);
      try {
        if (token === 'down') throw authUnavailable('cannot reach database: connection refused');
        if (token === 'hang') await new Promise(() => undefined);
        if (token === 'crash') throw new TypeError('a bug');
        if (token.startsWith('ok-')) {
          await new Promise((resolve) => setTimeout(resolve, 30));
          return principal(token, [3]);
        }
        throw authFailed('unknown token');
      } finally {
        self.running--;
      }
    },
    async check() {
      if (!self.healthy) throw new SidecastError('DB_UNAVAILABLE', 'cannot reach database x');
    },
    async close() {},
  };
  return self;
}

describe('operations: health, readiness, metrics, logs, database faults', () => {
  const apps: Sidecast[] = [];
  after(() => Promise.all(apps.map((app) => app.close())));

  async function start(flags: string[], authenticator: Authenticator, logger = captureLogs()) {
    const app = await startSidecast({
      options: serveOptions(flags),
      authenticator,
      logger: logger.logger,
    });
    apps.push(app);
    return { app, logs: logger.lines };
  }

  it('answers /healthz always and /readyz by the state of the bus and the database', async () => {
    const authenticator = scriptedAuthenticator();
    const { app } = await start([], authenticator);
    const health = await httpGet(app.port, '/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
    const ready = await httpGet(app.port, '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), {
      ready: true,
      checks: { bus: 'ok', database: 'ok' },
    });

    authenticator.healthy = false;
    const notReady = await httpGet(app.port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(JSON.parse(notReady.body), {
      ready: false,
      checks: { bus: 'ok', database: 'cannot reach database x' },
    });
    assert.equal((await httpGet(app.port, '/healthz')).status, 200, 'alive while not ready');
  });

  it('exports every documented metric in Prometheus text format', async () => {
    const { app } = await start([], tableAuthenticator({ t: principal('1', [3]) }));
    const client = await connectClient(app.url, 't');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'client live');
    await app.bus.publish(event(3));
    await client.waitForMessages(1);
    await app.bus.publish('broken');
    const answer = await httpGet(app.port, '/metrics');
    assert.equal(answer.status, 200);
    assert.match(String(answer.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const samples = await scrapeMetrics(app.port);
    for (const sample of [
      'sidecast_connections',
      'sidecast_authentications_total{outcome="success"}',
      'sidecast_events_received_total',
      'sidecast_events_delivered_total',
      'sidecast_events_dropped_total{reason="invalid_event"}',
      'sidecast_slow_consumer_closes_total',
      'sidecast_bus_reconnects_total',
      'sidecast_bus_outages_total',
      'sidecast_bus_connected',
      'sidecast_keepalive_timeouts_total',
      'sidecast_auth_duration_seconds_count',
      'sidecast_publish_to_send_seconds_count',
      'sidecast_process_resident_memory_bytes',
    ]) {
      assert.ok(samples.has(sample), `missing ${sample}`);
    }
    assert.equal(samples.get('sidecast_connections'), 1);
    assert.equal(samples.get('sidecast_events_received_total'), 2);
    assert.equal(samples.get('sidecast_events_delivered_total'), 1);
    assert.equal(samples.get('sidecast_bus_connected'), 1);
    assert.equal(samples.get('sidecast_auth_duration_seconds_count'), 1);
    client.ws.close();
  });

  it('closes with 1013 "try again later" when the database is down, and stays up', async () => {
    const { app, logs } = await start([], scriptedAuthenticator());
    const down = await connectClient(app.url, 'down');
    assert.deepEqual(await down.closed, { code: 1013, reason: 'try again later' });
    const crash = await connectClient(app.url, 'crash');
    assert.deepEqual(await crash.closed, { code: 1013, reason: 'try again later' });
    const bad = await connectClient(app.url, 'wrong');
    assert.deepEqual(await bad.closed, { code: 1011, reason: 'authentication failed' });
    const good = await connectClient(app.url, 'ok-1');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'a later client goes live');
    assert.equal(
      await metric(app.port, 'sidecast_authentications_total{outcome="unavailable"}'),
      2,
    );
    assert.equal(await metric(app.port, 'sidecast_authentications_total{outcome="failed"}'), 1);
    const refused = logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(
      refused.some((entry) => entry.msg === 'authentication refused' && entry.level === 40),
    );
    good.ws.close();
  });

  it('gives up on an authentication the database never answers: 1013 within --auth-timeout', async () => {
    const { app } = await start(
      ['--auth-timeout', '0.5', '--auth-concurrency', '2'],
      scriptedAuthenticator(),
    );
    const started = Date.now();
    const hung = await Promise.all([1, 2, 3].map(() => connectClient(app.url, 'hang')));
    for (const client of hung) {
      assert.deepEqual(await client.closed, { code: 1013, reason: 'try again later' });
    }
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    // The hung work gave its slots back: the next clients are served at once.
    const good = await connectClient(app.url, 'ok-2');
    await waitFor(() => app.server.liveConnectionCount === 1, 2000, 'a client after the hang');
    good.ws.close();
  });

  it('runs at most --auth-concurrency authentications at once', async () => {
    const authenticator = scriptedAuthenticator();
    const { app } = await start(['--auth-concurrency', '3'], authenticator);
    const clients = await Promise.all(
      Array.from({ length: 20 }, (_, i) => connectClient(app.url, `ok-${i}`)),
    );
    await waitFor(() => app.server.liveConnectionCount === 20, 10_000, 'all twenty live');
    assert.equal(authenticator.peak, 3);
    for (const client of clients) client.ws.close();
  });

  it('writes JSON log lines that never contain a token', async () => {
    const secretToken = 'AbCdEfGh1234567890-secret_token_value';
    const { app, logs } = await start([], tableAuthenticator({}));
    const client = await connectClient(app.url, secretToken);
    await client.closed;
    const upgrade = await connectClient(app.url, 'ok-unknown', { Origin: 'http://localhost:1' });
    await upgrade.closed;
    await app.close();
    assert.ok(logs.length >= 3, `only ${logs.length} log lines`);
    for (const line of logs) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof entry.level, 'number');
      assert.equal(typeof entry.msg, 'string');
      assert.ok(!line.includes(secretToken), `a token reached the log: ${line}`);
      assert.ok(!line.includes('ok-unknown'), `a token reached the log: ${line}`);
    }
    assert.ok(logs.some((line) => line.includes('"authentication refused"')));
  });

  it('drains: readiness reports it and every client gets 1001', async () => {
    const { app } = await start(['--drain-seconds', '0.3'], scriptedAuthenticator());
    const clients = await Promise.all(
      Array.from({ length: 6 }, (_, i) => connectClient(app.url, `ok-${i}`)),
    );
    await waitFor(() => app.server.liveConnectionCount === 6, 5000, 'six live');
    const draining = app.server.drain(0.3);
    const readiness = await app.readiness();
    assert.equal(readiness.ready, false);
    assert.equal(readiness.checks.server, 'draining');
    await draining;
    for (const client of clients) {
      assert.deepEqual(await client.closed, { code: 1001, reason: 'server shutting down' });
    }
    assert.equal(app.server.connectionCount, 0, 'drain waits for the close handshakes');
  });
});
