/**
 * GET /metrics on a real server: parallel scrapes share one collection, and SIDECAST_METRICS_KEY,
 * when set, is required. (Event latency under a flood of scrapes, where collections are costly,
 * is tested on two workers in test/integration/metrics-workers.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { parseArgs } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { connectClient, type TestClient } from '../support/client.js';
import { httpGet, httpRequest } from '../support/observe.js';
import { principal, serveOptions, tableAuthenticator } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const KEY = 'metrics-key-for-tests';
const authenticator = tableAuthenticator({ 'token-ann': principal('ann', [9]) });

function startServer(metricsKey = ''): Promise<Sidecast> {
  return startSidecast({
    options: { ...serveOptions(), metricsKey },
    authenticator,
    logger: createLogger('silent'),
  });
}

/** GET /metrics with an Authorization header: status, www-authenticate and body. */
async function scrape(port: number, authorization?: string) {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  const answer = await httpRequest(port, { path: '/metrics', headers });
  return {
    status: answer.status,
    challenge: answer.headers['www-authenticate'],
    body: answer.body,
  };
}

/** Counts the collections the server's registry performs. */
function countCollections(app: Sidecast): { count: number } {
  const counter = { count: 0 };
  const registry = app.metrics.registry;
  const collect = registry.metrics.bind(registry);
  registry.metrics = () => {
    counter.count++;
    return collect();
  };
  return counter;
}

describe('GET /metrics scraped in parallel', () => {
  let app: Sidecast;
  let watcher: TestClient;
  before(async () => {
    app = await startServer();
    watcher = await connectClient(app.url, 'token-ann');
    await waitFor(() => app.server.liveConnectionCount === 1, 5000, 'the watcher to go live');
  });
  after(async () => {
    watcher.ws.close();
    await app.close();
  });

  it('answers 200 parallel scrapes from one collection', async () => {
    const collections = countCollections(app);
    const answers = await Promise.all(Array.from({ length: 200 }, () => scrape(app.port)));
    assert.deepEqual([...new Set(answers.map((answer) => answer.status))], [200]);
    assert.match(answers[0]!.body, /^sidecast_connections 1$/m);
    // One collection; two if the 200 took longer than the second a collection is kept.
    assert.ok(collections.count <= 2, `${collections.count} collections for 200 scrapes`);
  });
});

describe('SIDECAST_METRICS_KEY', () => {
  let app: Sidecast;
  before(async () => {
    app = await startServer(KEY);
  });
  after(() => app.close());

  it('is required by /metrics once set, as a bearer key', async () => {
    for (const authorization of [undefined, `Bearer ${KEY}x`, `Basic ${KEY}`, 'Bearer']) {
      const answer = await scrape(app.port, authorization);
      assert.equal(answer.status, 401, String(authorization));
      assert.equal(answer.challenge, 'Bearer');
      assert.doesNotMatch(answer.body, /sidecast_/);
    }
    const answer = await scrape(app.port, `Bearer ${KEY}`);
    assert.equal(answer.status, 200);
    assert.match(answer.body, /^sidecast_connections 0$/m);
    // Health and readiness stay open: orchestrators probe them without secrets.
    assert.equal((await httpGet(app.port, '/healthz')).status, 200);
    assert.equal((await httpGet(app.port, '/readyz')).status, 200);
  });

  it('is read from the environment only', () => {
    const options = parseArgs(['metrics-key'], [], { SIDECAST_METRICS_KEY: KEY }).options;
    assert.equal(options.metricsKey, KEY);
    assert.throws(() => parseArgs(['metrics-key'], ['--metrics-key', KEY], {}), /unknown option/);
  });
});
