/**
 * Floods anyone can cause must not flood the log: invalid events on the bus, bad tokens and
 * refused upgrades each give a line per kind per interval, while the metrics count every one.
 * A real server on a redis-server of the test's own, real sesame tokens on a SQLite database
 * with Django's schema.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startSidecast, type Sidecast } from '../../src/app.js';
import { createSesameAuthenticator } from '../../src/auth/sesame/authenticator.js';
import { createDjangoSqlite } from '../../src/demo/schema.js';
import {
  DEFAULT_SESAME_SETTINGS,
  type DjangoSesameSettings,
} from '../../src/auth/sesame/settings.js';
import { createRedisServer, type RedisServer } from '../support/faults.js';
import { connectClient, upgradeStatus } from '../support/client.js';
import { metric, metricReaches } from '../support/metrics.js';
import { captureLogs, type CapturedLogs } from '../support/observe.js';
import { event, serveOptions } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const INVALID_EVENTS = 50_000;
const BAD_TOKENS = 400;

const django: DjangoSesameSettings = {
  secretKey: randomBytes(24).toString('hex'),
  secretKeyFallbacks: [],
  authUserModel: 'auth.User',
  useTz: true,
  sesame: DEFAULT_SESAME_SETTINGS,
};

describe('log floods', () => {
  let dir: string;
  let redis: RedisServer;
  let publisher: Redis;
  let databaseUrl: string;
  let bookType: number;
  let token: string;
  let wrongSignature: string;
  let app: Sidecast | undefined;
  let logs: CapturedLogs;
  const channel = `sidecast-log-flood-${randomBytes(6).toString('hex')}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidecast-log-flood-'));
    const file = join(dir, 'db.sqlite3');
    const site = createDjangoSqlite(file, {
      models: [{ label: 'catalog.book', verboseName: 'book' }],
      users: [{ username: 'reader', permissions: ['catalog.view_book'] }],
    });
    bookType = site.contentTypes.get('catalog.book')!;
    databaseUrl = `sqlite://${file}`;
    const issuer = await createSesameAuthenticator({ databaseUrl, django, scope: '' });
    token = await issuer.mintToken('reader');
    wrongSignature = await issuer.mintToken('reader', 'another scope');
    await issuer.close();
    redis = await createRedisServer();
    await redis.start();
    publisher = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    logs = captureLogs();
    app = await startSidecast({
      options: serveOptions([
        '--django-db',
        databaseUrl,
        '--bus',
        'redis',
        '--redis',
        redis.url,
        '--channel',
        channel,
        '--allowed-origins',
        'https://app.example.com',
      ]),
      django,
      logger: logs.logger,
    });
  });
  after(async () => {
    await app?.close();
    publisher?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const linesFor = (msg: string) => logs.entries().filter((entry) => entry.msg === msg);

  it(`logs a handful of lines for ${INVALID_EVENTS} invalid events, counts them all, delivers the rest`, async () => {
    const client = await connectClient(app!.url, token);
    await waitFor(() => app!.server.liveConnectionCount === 1, 5000, 'client live');
    const first = event(bookType, { n: 'first' });
    const last = event(bookType, { n: 'last' });
    const invalid = ['not json', '[1]', '{"content_type_id": "1"}', '{"content_type_id": null}'];
    const pipeline = publisher.pipeline();
    pipeline.publish(channel, first);
    for (let i = 0; i < INVALID_EVENTS; i++) {
      pipeline.publish(channel, `${invalid[i % invalid.length]!}${' '.repeat(i % 7)}`);
    }
    pipeline.publish(channel, last);
    const linesBefore = logs.lines.length;
    await pipeline.exec();
    // The bus keeps order: once the last event arrives, every invalid one was handled.
    assert.deepEqual(await client.waitForMessages(2, 30_000), [first, last]);
    assert.equal(
      await metric(app!.port, 'sidecast_events_dropped_total{reason="invalid_event"}'),
      INVALID_EVENTS,
    );
    const dropped = linesFor('event dropped');
    assert.ok(dropped.length <= invalid.length, `${dropped.length} "event dropped" lines`);
    assert.deepEqual(
      [...new Set(dropped.map((entry) => entry.reason))].sort(),
      ['content_type_id is null', 'no integer content_type_id', 'not JSON', 'not a JSON object'],
      'each reason is still named once',
    );
    assert.ok(logs.lines.length - linesBefore <= 10, `${logs.lines.length - linesBefore} lines`);
    client.ws.close();
  });

  it(`logs a line or two for ${BAD_TOKENS} refused tokens and refused upgrades`, async () => {
    const failedBefore = await metric(
      app!.port,
      'sidecast_authentications_total{outcome="failed"}',
    );
    const kinds = ['garbage!', 'AAAAAAAAAAAAAAAAAAAAAAAAAA', wrongSignature];
    for (let start = 0; start < BAD_TOKENS; start += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const client = await connectClient(app!.url, kinds[(start + i) % kinds.length]);
          assert.equal((await client.closed).code, 1011);
        }),
      );
    }
    const refusedOrigins = Array.from({ length: 100 }, () =>
      upgradeStatus(app!.url, { Origin: 'https://evil.example.com' }),
    );
    for (const { status } of await Promise.all(refusedOrigins)) assert.equal(status, 403);

    // /metrics reuses a collection for a second: wait for one taken after the flood.
    assert.equal(
      await metricReaches(
        app!.port,
        'sidecast_authentications_total{outcome="failed"}',
        failedBefore + BAD_TOKENS,
      ),
      failedBefore + BAD_TOKENS,
    );
    assert.equal(
      await metricReaches(app!.port, 'sidecast_connections_refused_total{reason="origin"}', 100),
      100,
    );
    const refused = linesFor('authentication refused');
    assert.ok(refused.length >= 1 && refused.length <= 2, `${refused.length} refusal lines`);
    const upgrades = linesFor('upgrade refused');
    assert.ok(upgrades.length >= 1 && upgrades.length <= 2, `${upgrades.length} upgrade lines`);
  });
});
