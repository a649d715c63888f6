/**
 * POST /publish reads the Authorization header before it knows whether the key is right, so the
 * cost of reading it must not depend on what an attacker puts there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { parseArgs } from '../../src/config.js';
import { isSidecastError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { describeReport, loopUntil, measureDelivery } from '../support/latency.js';
import { connectClient, type TestClient } from '../support/client.js';
import { httpRequest } from '../support/observe.js';
import { event, principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const KEY = 'publish-key-for-auth-tests';

/** One POST /publish on a fresh connection: its status and the message of its JSON answer. */
async function post(
  port: number,
  authorization: string,
  body = event(5),
): Promise<{ status: number; message: string }> {
  const answer = await httpRequest(port, {
    method: 'POST',
    path: '/publish',
    headers: {
      authorization,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
  });
  const { message = '' } = JSON.parse(answer.body) as { message?: string };
  return { status: answer.status, message };
}

describe('POST /publish Authorization header', () => {
  let app: Sidecast;
  let watcher: TestClient;
  before(async () => {
    app = await startSidecast({
      options: { ...serveOptions(), publishKey: KEY },
      authenticator: tableAuthenticator({ 'token-ann': principal('ann', [5]) }),
      logger: createLogger('silent'),
    });
    watcher = await connectClient(app.url, 'token-ann');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'the watcher to go live');
  });
  after(async () => {
    watcher.ws.close();
    await app.close();
  });

  it('keeps events prompt while attackers send 16,000 spaces in the header', async (t) => {
    const hostile = `Bearer a${' '.repeat(16_000)}b`;
    const statuses = new Set<number>();
    const measured = measureDelivery(watcher.ws, (payload) => app.bus.publish(payload), {
      contentTypeId: 5,
      durationMs: 1500,
      intervalMs: 25,
    });
    const rounds = await loopUntil(measured, 4, async () => {
      statuses.add((await post(app.port, hostile).catch(() => ({ status: 0 }))).status);
    });
    const report = await measured;
    t.diagnostic(describeReport(report, rounds, 'hostile requests'));
    // Each of these cost about 125-250 ms of regex before: four loops put the median event
    // 350-700 ms late. The bounds leave room for a busy test machine.
    const median = report.latencies[Math.floor(report.latencies.length / 2)] ?? Infinity;
    assert.ok(median < 100, `the median event arrived ${median} ms late`);
    assert.ok(report.worstMs < 500, `an event arrived ${report.worstMs} ms late`);
    assert.equal(report.received, report.sent, 'every event arrived');
    assert.deepEqual([...statuses], [401]);
    assert.ok(rounds >= 20, `only ${rounds} hostile requests were answered`);
  });

  it('refuses an overlong header unread, and still takes spaces around the key', async () => {
    // Node drops spaces at the end of a header value, so these go between scheme and key.
    assert.deepEqual(await post(app.port, `Bearer${' '.repeat(600)}${KEY}`), {
      status: 401,
      message: 'Authorization header longer than 512 bytes',
    });
    assert.deepEqual(await post(app.port, `Bearer ${'k'.repeat(600)}`), {
      status: 401,
      message: 'Authorization header longer than 512 bytes',
    });
    assert.deepEqual(await post(app.port, `Bearer ${'k'.repeat(400)}`), {
      status: 401,
      message: 'wrong publish key',
    });
    assert.deepEqual(await post(app.port, 'Bearer'), {
      status: 401,
      message: 'missing "Authorization: Bearer KEY" header',
    });
    assert.deepEqual(await post(app.port, 'Bearer    '), {
      status: 401,
      message: 'missing "Authorization: Bearer KEY" header',
    });
    const seen = watcher.messages.length;
    const payload = event(5, { spaced: true });
    assert.equal((await post(app.port, `BEARER   ${KEY}  `, payload)).status, 202);
    assert.deepEqual((await watcher.waitForMessages(seen + 1)).slice(seen), [payload]);
  });

  it('refuses, at start-up, a key that no header could carry', () => {
    for (const [key, message] of [
      ['k'.repeat(257), 'SIDECAST_PUBLISH_KEY: at most 256 characters'],
      [' key', 'SIDECAST_PUBLISH_KEY: printable ASCII only, without spaces at either end'],
      ['clé', 'SIDECAST_PUBLISH_KEY: printable ASCII only, without spaces at either end'],
    ] as const) {
      assert.throws(
        () => parseArgs(['publish-key'], [], { SIDECAST_PUBLISH_KEY: key }),
        (error: unknown) => isSidecastError(error, 'CONFIG_INVALID') && error.message === message,
        key,
      );
    }
    const longest = 'k'.repeat(256);
    assert.equal(
      parseArgs(['publish-key'], [], { SIDECAST_PUBLISH_KEY: longest }).options.publishKey,
      longest,
    );
  });
});
