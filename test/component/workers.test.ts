/**
 * `sidecast serve --workers 2`: one port, two worker processes, each subscribed to the bus.
 * Clients land on both workers (the cluster hands connections out in turn), and each of them
 * receives every event it may see whichever worker took the publish: with the memory bus the
 * primary relays events between workers, with Redis each worker has its own subscription.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { connectClient, type TestClient } from '../support/client.js';
import { processEnv, spawnServe, type ServeProcess } from '../support/e2e.js';
import { metric } from '../support/metrics.js';
import { waitFor } from '../support/wait.js';

const PUBLISH_KEY = `key-${randomBytes(12).toString('hex')}`;

/** Until /metrics, which sums every worker's figures, counts `count` authenticated clients. */
function waitForAuthenticated(url: string, count: number): Promise<void> {
  const authenticated = () => metric(url, 'sidecast_authentications_total{outcome="success"}');
  return waitFor(async () => (await authenticated()) >= count, 15_000, 'authentication', 50);
}

/** The worker processes of a `serve --workers N` primary. */
function workerPids(primary: number): number[] {
  const children = readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8');
  return children.split(' ').filter(Boolean).map(Number);
}

/**
 * Kills one worker and returns which clients lost their connection. Clients on both workers
 * means some drop and some stay: proof that they were spread and that each worker delivered.
 */
async function clientsOfOneWorker(
  primary: number,
  clients: Map<string, TestClient>,
): Promise<{ dropped: string[]; kept: string[] }> {
  const workers = workerPids(primary);
  assert.equal(workers.length, 2, 'two worker processes');
  const dropped = new Set<string>();
  for (const [name, client] of clients) void client.closed.then(() => dropped.add(name));
  process.kill(workers[0]!, 'SIGKILL');
  await sleep(1000);
  return {
    dropped: [...dropped].sort(),
    kept: [...clients.keys()].filter((name) => !dropped.has(name)).sort(),
  };
}

async function publishOverHttp(url: string, payloads: readonly string[]): Promise<void> {
  const response = await fetch(new URL('/publish', url.replace(/^ws/, 'http')), {
    method: 'POST',
    headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
    body: `[${payloads.join(', ')}]`,
  });
  assert.equal(response.status, 202, await response.text());
}

function bookEvent(contentType: number, n: number): string {
  return `{"model": "book", "object": "Book ${n}", "content_type_id": ${contentType}, "n": ${n}}`;
}

describe('serve --workers 2', () => {
  let site: DjangoSite;
  let books = 0;
  let authors = 0;
  const people = ['ada', 'bob', 'cyd', 'dee', 'eve'];

  before(async () => {
    site = await createDjangoSite({ dialect: 'sqlite' });
    const { driver } = site;
    await driver.createUser({ username: 'ada', isSuperuser: true });
    for (const name of ['bob', 'cyd'])
      await driver.createUser({ username: name, perms: ['catalog.view_book'] });
    for (const name of ['dee', 'eve'])
      await driver.createUser({
        username: name,
        perms: ['catalog.view_book', 'catalog.change_author'],
      });
    [books] = await driver.getContentTypes({ username: 'bob' });
    authors = (await driver.getContentTypes({ username: 'dee' })).find((id) => id !== books)!;
    assert.ok(books > 0 && authors > 0);
  });
  after(() => site?.close());

  async function startWorkers(bus: 'memory' | 'redis'): Promise<ServeProcess> {
    const args = ['--port', '0', '--workers', '2', '--bus', bus, '--log-level', 'warn'];
    const env = processEnv({ ...site.env, SIDECAST_PUBLISH_KEY: PUBLISH_KEY });
    return spawnServe(args, env);
  }

  async function connectEveryone(url: string): Promise<Map<string, TestClient>> {
    const clients = new Map<string, TestClient>();
    for (const username of people) {
      const token = await site.driver.getToken({ username });
      clients.set(username, await connectClient(url, token));
    }
    return clients;
  }

  function expectedFor(username: string, events: readonly { ct: number; payload: string }[]) {
    const sees =
      username === 'ada' || username === 'dee' || username === 'eve' ? [books, authors] : [books];
    return events.filter((e) => sees.includes(e.ct)).map((e) => e.payload);
  }

  async function assertEveryoneGets(
    clients: Map<string, TestClient>,
    events: readonly { ct: number; payload: string }[],
  ): Promise<void> {
    for (const [username, client] of clients) {
      const want = expectedFor(username, events);
      const frames = await client.waitForFrames(want.length);
      assert.deepEqual(
        frames.map((frame) => frame.toString()),
        want,
        `${username} receives every event it may see, once, in order`,
      );
    }
  }

  it('with the memory bus, every worker delivers every event published on any worker', async () => {
    const server = await startWorkers('memory');
    try {
      const clients = await connectEveryone(server.url);
      await waitForAuthenticated(server.url, people.length);
      const events = Array.from({ length: 6 }, (_, n) => {
        const ct = n % 3 === 2 ? authors : books;
        return { ct, payload: bookEvent(ct, n) };
      });
      // Whichever worker takes a request, the primary relays its events to the other.
      for (const e of events) await publishOverHttp(server.url, [e.payload]);
      await assertEveryoneGets(clients, events);
      const { dropped, kept } = await clientsOfOneWorker(server.child.pid!, clients);
      assert.ok(dropped.length > 0 && kept.length > 0, `dropped ${dropped}, kept ${kept}`);
      for (const client of clients.values()) client.ws.close();
    } finally {
      await server.stop();
    }
  });

  it('with the redis bus, each worker subscribes and delivers every event', async () => {
    const server = await startWorkers('redis');
    const redis = new Redis(site.redisUrl);
    try {
      const subscribers = (await redis.pubsub('NUMSUB', site.channel)) as [string, number];
      assert.equal(Number(subscribers[1]), 2, 'one subscription per worker');
      const clients = await connectEveryone(server.url);
      await waitForAuthenticated(server.url, people.length);
      const events = Array.from({ length: 6 }, (_, n) => {
        const ct = n % 2 === 0 ? books : authors;
        return { ct, payload: bookEvent(ct, n) };
      });
      // Half from Django's side (straight to Redis), half through POST /publish.
      for (const [n, e] of events.entries()) {
        if (n % 2 === 0) await redis.publish(site.channel, e.payload);
        else await publishOverHttp(server.url, [e.payload]);
        await sleep(20); // the two routes must not race each other: order is part of the check
      }
      await assertEveryoneGets(clients, events);
      const { dropped, kept } = await clientsOfOneWorker(server.child.pid!, clients);
      assert.ok(dropped.length > 0 && kept.length > 0, `dropped ${dropped}, kept ${kept}`);
      for (const client of clients.values()) client.ws.close();
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});
