/**
 * The Origin header is read before any authentication, so checking it must stay cheap whatever an
 * attacker sends: with a wildcard pattern, a backtracking matcher spent seconds per upgrade.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { Sidecast } from '../../src/app.js';
import { MAX_ORIGIN_LENGTH } from '../../src/server/origin.js';
import { describeReport, loopUntil, measureDelivery } from '../support/latency.js';
import { metric } from '../support/observe.js';
import { rawExchange, upgradeRequest } from '../support/raw-websocket.js';
import {
  connectClient,
  principal,
  startTestServer,
  tableAuthenticator,
  waitFor,
  type TestClient,
} from '../support/server.js';

const authenticator = tableAuthenticator({ 'token-ann': principal('ann', [5]) });

/** The HTTP status a browser-like upgrade from `origin` gets: 101 if the WebSocket opens. */
function upgradeStatus(url: string, origin: string): Promise<number> {
  const ws = new WebSocket(url, { headers: { Origin: origin } });
  ws.on('error', () => undefined);
  return new Promise((resolve) => {
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_request, response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
  });
}

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
    assert.equal(await upgradeStatus(app.url, host(MAX_ORIGIN_LENGTH)), 101);
    assert.equal(await upgradeStatus(app.url, host(MAX_ORIGIN_LENGTH + 1)), 403);
    assert.equal(await upgradeStatus(app.url, 'https://a-b.example.com'), 403);
  });
});
