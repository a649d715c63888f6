/**
 * The Origin header is read before any authentication, so checking it must stay cheap whatever an
 * attacker sends: with a wildcard pattern, a backtracking matcher spent seconds per upgrade.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { MAX_ORIGIN_LENGTH } from '../../src/server/origin.js';
import { describeReport, loopUntil, measureDelivery } from '../support/latency.js';
import { connectClient, upgradeStatus, type TestClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { principal, startTestServer, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';
import { rawExchange, upgradeRequest } from '../support/raw-websocket.js';

const authenticator = tableAuthenticator({ 'token-ann': principal('ann', [5]) });

describe('hostile Origin headers', () => {
  let app: Sidecast;
  let watcher: TestClient;
  before(async () => {
    app = await startTestServer(['--allowed-origins', 'https://*-*-*.example.com'], {
      authenticator,
    });
    watcher = await connectClient(app.url, 'token-ann');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'the watcher to go live');
  });
  after(async () => {
    watcher.ws.close();
    await app.close();
  });

  it('refuses a 4 KB origin with 403 while other clients keep getting events promptly', async (t) => {
    const hostile = `https://${'a-'.repeat(2000)}!`;
    const statuses = new Set<number>();
    const measured = measureDelivery(watcher.ws, (payload) => app.bus.publish(payload), {
      contentTypeId: 5,
      durationMs: 1500,
      intervalMs: 25,
    });
    const rounds = await loopUntil(measured, 4, async () => {
      const request = upgradeRequest(app.port, { origin: hostile });
      const answer = await rawExchange(app.port, request).catch(() => ({ status: 0 }));
      statuses.add(answer.status);
    });
    const report = await measured;
    t.diagnostic(describeReport(report, rounds, 'hostile upgrades'));
    // A backtracking matcher blocked the server for about 3.5 s per upgrade; the bound leaves
    // room for a busy test machine.
    assert.ok(report.worstMs < 500, `an event arrived ${report.worstMs} ms late`);
    assert.equal(report.received, report.sent, 'every event arrived');
    assert.deepEqual([...statuses], [403], 'every hostile upgrade answered 403');
    assert.ok(rounds >= 8, `only ${rounds} hostile upgrades were answered`);
    assert.equal(
      await metric(app.port, 'sidecast_connections_refused_total{reason="origin_too_long"}'),
      rounds,
    );
  });

  it('considers origins up to the cap and refuses longer ones, even ones that would match', async () => {
    const host = (length: number) =>
      `https://a-b-${'c'.repeat(length - 'https://a-b-.example.com'.length)}.example.com`;
    assert.equal((await upgradeStatus(app.url, { Origin: host(MAX_ORIGIN_LENGTH) })).status, 101);
    assert.equal(
      (await upgradeStatus(app.url, { Origin: host(MAX_ORIGIN_LENGTH + 1) })).status,
      403,
    );
    assert.equal((await upgradeStatus(app.url, { Origin: 'https://a-b.example.com' })).status, 403);
  });
});
