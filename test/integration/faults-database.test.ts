import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { loadDjangoSettings } from '../../src/config.js';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { createTcpProxy, type TcpProxy } from '../support/faults.js';
import { connectClient, liveClient, type TestClient } from '../support/client.js';
import { metric } from '../support/metrics.js';
import { captureLogs, httpGet, type CapturedLogs } from '../support/observe.js';
import { event, serveOptions } from '../support/server.js';

/**
 * The Django database failing while clients authenticate, with the real django-sesame
 * authenticator: PostgreSQL reached through a proxy the test cuts (connections reset, new ones
 * refused) or freezes (connections open, no answer).
 */
describe('database faults during authentication', () => {
  let site: DjangoSite;
  let proxy: TcpProxy;
  let app: Sidecast;
  let logs: CapturedLogs;
  let bookType: number;
  let watcher: TestClient;

  const token = () => site.driver.getToken({ username: 'reader' });

  const live = async () => liveClient(app, await token(), 10_000);

  async function readyz() {
    const answer = await httpGet(app.port, '/readyz');
    return {
      status: answer.status,
      ...(JSON.parse(answer.body) as { checks: { database: string } }),
    };
  }

  /** The client opened before the fault keeps its connection and its events. */
  async function watcherStillReceives(marker: string): Promise<void> {
    const payload = event(bookType, { marker });
    const seen = watcher.messages.length;
    await app.bus.publish(payload);
    assert.equal((await watcher.waitForMessages(seen + 1))[seen], payload);
    assert.equal(watcher.ws.readyState, WebSocket.OPEN);
  }

  before(async () => {
    site = await createDjangoSite({ dialect: 'postgres' });
    await site.driver.createUser({ username: 'reader', perms: ['catalog.view_book'] });
    bookType = await site.driver.contentTypeId({ appLabel: 'catalog', model: 'book' });
    proxy = await createTcpProxy(5432);
    const viaProxy = new URL(site.dbUrl);
    viaProxy.port = String(proxy.port);
    logs = captureLogs();
    app = await startSidecast({
      // No snapshots: each authentication reads the database, whose faults are the subject here
      // (with them, a user read within the interval is admitted on the snapshot).
      options: serveOptions([
        '--django-db',
        viaProxy.toString(),
        '--auth-timeout',
        '2',
        '--permissions-refresh',
        '0',
      ]),
      django: loadDjangoSettings(site.env),
      logger: logs.logger,
    });
    watcher = await live();
  });

  after(async () => {
    await app?.close();
    await proxy?.close();
    await site?.close();
  });

  it('answers 1013 "try again later" while the database refuses connections, then recovers', async () => {
    await proxy.cut();
    const fresh = await token();
    const started = Date.now();
    const client = await connectClient(app.url, fresh);
    assert.deepEqual(await client.closed, { code: 1013, reason: 'try again later' });
    // A refused connection is known at once; only a silent database waits for --auth-timeout.
    assert.ok(Date.now() - started < 1500, `closed after ${Date.now() - started} ms`);
    const ready = await readyz();
    assert.equal(ready.status, 503);
    assert.match(ready.checks.database, /cannot reach database/);
    assert.equal((await httpGet(app.port, '/healthz')).status, 200);
    await watcherStillReceives('during cut');

    await proxy.restore();
    const again = await live();
    assert.equal((await readyz()).status, 200);
    again.ws.close();
    assert.ok(
      (await metric(app.port, 'sidecast_authentications_total{outcome="unavailable"}')) >= 1,
    );
    for (const line of logs.lines) assert.ok(!line.includes(fresh), 'no token in the logs');
  });

  it('answers 1013 within --auth-timeout when the database stops answering, then recovers', async () => {
    proxy.hang();
    const started = Date.now();
    const client = await connectClient(app.url, await token());
    assert.deepEqual(await client.closed, { code: 1013, reason: 'try again later' });
    const took = Date.now() - started;
    assert.ok(took >= 1500 && took < 5000, `closed after ${took} ms`);
    assert.equal((await readyz()).status, 503);
    await watcherStillReceives('during hang');

    await proxy.restore();
    const again = await live();
    assert.equal((await readyz()).status, 200);
    again.ws.close();
  });
});
