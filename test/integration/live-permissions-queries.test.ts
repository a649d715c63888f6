/**
 * The scheduled re-check costs the database O(users / batch) queries, not O(connections): 50
 * users of a real Django site on PostgreSQL, 3 connections each, a real sidecast re-checking every
 * second. Counted twice: each statement the server sends (test/support/pg-queries.ts), and what
 * PostgreSQL itself counts for the database over the server's whole life (pg_stat_database), so
 * that the first count is known to miss nothing the database did.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Sidecast } from '../../src/app.js';
import { connectClient, type TestClient } from '../support/client.js';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { startSiteServer } from '../support/e2e.js';
import { counted } from '../support/metrics.js';
import {
  countPostgresQueries,
  userQueries,
  watchDatabase,
  type DatabaseActivity,
  type QueryCounter,
} from '../support/pg-queries.js';
import { waitFor } from '../support/wait.js';

const USERS = 50;
const PER_USER = 3;
const ROUNDS = 3;

const CREATE_USERS = `from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connections
from sesame.utils import get_token
groups = []
for model in ("book", "author"):
    group = Group.objects.create(name=f"{model} readers")
    group.permissions.add(Permission.objects.get(codename=f"view_{model}"))
    groups.append(group)
result = []
for i in range(args["count"]):
    user = get_user_model().objects.create_user(f"reader-{i}")
    user.groups.add(groups[i % len(groups)])
    result.append(get_token(user))
# Disconnect, so that PostgreSQL publishes what this process did before the count begins.
connections.close_all()`;

void test('the scheduled re-check of 50 users with 3 connections each costs two queries per batch of users, not per connection', async (t) => {
  let site: DjangoSite | undefined;
  let database: DatabaseActivity | undefined;
  let counter: QueryCounter | undefined;
  let app: Sidecast | undefined;
  const clients: TestClient[] = [];
  try {
    // Pub/sub channels are global to Redis: Django's control messages go to this test's only.
    const controlChannel = `sidecast-test-control-${randomBytes(4).toString('hex')}`;
    site = await createDjangoSite({
      dialect: 'postgres',
      redisUrl: 'redis://127.0.0.1:6379/14',
      env: { SIDECAST_CONTROL_CHANNEL: controlChannel },
    });
    const name = new URL(site.dbUrl).pathname.slice(1);
    const tokens = await site.driver.shell<string[]>(CREATE_USERS, { count: USERS });
    database = await watchDatabase(name);
    const idle = (what: string) =>
      waitFor(async () => (await database!.backends()) === 0, 10_000, what);
    await idle('Django to disconnect');
    const transactionsBefore = await database.transactions();

    counter = countPostgresQueries(name);
    app = await startSiteServer(site, [
      '--control-channel',
      controlChannel,
      '--permissions-refresh',
      '1',
    ]);
    const running = app;
    for (const token of tokens) {
      for (let i = 0; i < PER_USER; i++) clients.push(await connectClient(running.url, token));
    }
    await waitFor(
      () => running.server.liveConnectionCount === USERS * PER_USER,
      20_000,
      `${USERS * PER_USER} connections live`,
    );
    const rechecks = () => counted(running.metrics.permissionRechecks, { trigger: 'refresh' });
    const rechecksBefore = await rechecks();
    const sentBefore = counter.queries.length;
    await waitFor(
      async () => (await rechecks()) >= rechecksBefore + ROUNDS * USERS,
      ROUNDS * 1000 + 5000,
      `${ROUNDS} refresh rounds`,
    );
    // Stopped, so that nothing moves any more; its connections to PostgreSQL close.
    await app.close();
    const batches = ((await rechecks()) - rechecksBefore) / USERS;
    assert.ok(Number.isInteger(batches) && batches >= ROUNDS, `${batches} batches`);
    const refreshQueries = userQueries(counter.queries.slice(sentBefore));
    // Each batch: the users by primary key, then their permissions, both for all 50 at once. A
    // batch under way when the count began may have sent its two before, one under way when the
    // server stopped may have sent them without being counted as a re-check.
    assert.ok(
      refreshQueries.length >= 2 * (batches - 1) && refreshQueries.length <= 2 * (batches + 1),
      `${refreshQueries.length} queries for ${batches} batches of ${USERS} users`,
    );
    for (const query of refreshQueries) {
      assert.ok(query.params >= USERS, `one user at a time: ${JSON.stringify(query)}`);
    }

    // PostgreSQL agrees: each statement was one transaction, and there were no others but the
    // start of each connection (and autovacuum, which may visit any database).
    await idle('sidecast to disconnect');
    const transactions = (await database.transactions()) - transactionsBefore;
    const sent = counter.queries.length;
    assert.ok(transactions >= sent, `${transactions} transactions for ${sent} statements`);
    assert.ok(transactions <= sent + 30, `${transactions} transactions for ${sent} statements`);
    t.diagnostic(
      `${refreshQueries.length} queries for ${batches} batches of ${USERS} users ` +
        `(${USERS * PER_USER} connections); over the server's life ${sent} statements, ` +
        `${transactions} transactions in pg_stat_database`,
    );
  } finally {
    counter?.stop();
    for (const client of clients) client.ws.terminate();
    await app?.close();
    await database?.close();
    await site?.close();
  }
});
