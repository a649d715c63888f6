/**
 * `sidecast serve --workers 2`: one port, two worker processes, each subscribed to the bus.
 * Clients land on both workers (each worker accepts for itself; /proc tells which one took a
 * connection), and each of them receives every event it may see whichever worker took the
 * publish: with the memory bus the primary relays events between workers, with Redis each worker
 * has its own subscription.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { connectClient, type TestClient } from '../support/client.js';
import { processEnv, spawnServe, type ServeProcess } from '../support/e2e.js';
import { metric } from '../support/metrics.js';
import { childPids, connectionOwners } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const PUBLISH_KEY = `key-${randomBytes(12).toString('hex')}`;

/** Until /metrics, which sums every worker's figures, counts `count` authenticated clients. */
function waitForAuthenticated(url: string, count: number): Promise<void> {
  const authenticated = () => metric(url, 'sidecast_authentications_total{outcome="success"}');
  return waitFor(async () => (await authenticated()) >= count, 15_000, 'authentication', 50);
}

/**
 * Kills one worker and returns which clients lost their connection. Clients on both workers
 * means some drop and some stay: proof that they were spread and that each worker delivered.
 */
async function clientsOfOneWorker(
  primary: number,
  clients: Map<string, TestClient>,
): Promise<{ dropped: string[]; kept: string[] }> {
  const workers = childPids(primary);
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

/** A TCP connection opened now, to send one HTTP request on later. */
async function openSocket(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** POST /publish on an open connection; resolves with the status as soon as it arrives. */
function publishOn(socket: Socket, payload: string): Promise<number> {
  const body = `[${payload}]`;
  const request =
    'POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' +
    `Authorization: Bearer ${PUBLISH_KEY}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return new Promise((resolve, reject) => {
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      if (status !== undefined) resolve(Number(status));
    });
    socket.once('close', () => reject(new Error(`connection closed before an answer: ${head}`)));
    socket.write(request);
  });
}

/** Items taken in turn from each list, until one runs out: a, b, a, b, ... */
function alternate<T>(lists: readonly (readonly T[])[]): T[] {
  const out: T[] = [];
  for (let i = 0; lists.every((list) => i < list.length); i++)
    for (const list of lists) out.push(list[i]!);
  return out;
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

  /**
   * One client per person, on both workers: each worker accepts for itself, so the kernel picks
   * where a connection lands; a client on the busier worker reconnects until both have some.
   * Resolves once every client is authenticated.
   */
  async function connectEveryone(server: ServeProcess): Promise<Map<string, TestClient>> {
    const clients = new Map<string, TestClient>();
    const tokens = new Map<string, string>();
    for (const username of people) {
      tokens.set(username, await site.driver.getToken({ username }));
      clients.set(username, await connectClient(server.url, tokens.get(username)!));
    }
    const port = Number(new URL(server.url).port);
    const workers = childPids(server.child.pid!);
    let opened = people.length;
    for (let attempt = 0; ; attempt++) {
      const owners = connectionOwners(port, workers);
      const on = workers.map((pid) =>
        people.filter((name) => owners.get(clients.get(name)!.localPort) === pid),
      );
      if (on.every((names) => names.length > 0)) break;
      assert.ok(attempt < 30, `clients stay on one worker: ${on.map((names) => names.length)}`);
      const crowded = on.find((names) => names.length > 1)!;
      const moving = crowded[attempt % crowded.length]!;
      clients.get(moving)!.ws.terminate();
      clients.set(moving, await connectClient(server.url, tokens.get(moving)!));
      opened++;
    }
    await waitForAuthenticated(server.url, opened);
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
      const clients = await connectEveryone(server);
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

  it('with the memory bus, publishes completed one after the other reach every client in that order, whichever worker took them', async () => {
    // --auth-timeout bounds how long a connection may wait before its request: the publishing
    // connections are all opened first.
    const args = ['--port', '0', '--workers', '2', '--bus', 'memory', '--log-level', 'warn'];
    const env = processEnv({ ...site.env, SIDECAST_PUBLISH_KEY: PUBLISH_KEY });
    const server = await spawnServe([...args, '--auth-timeout', '60'], env);
    const sockets: Socket[] = [];
    const clients: TestClient[] = [];
    try {
      const port = Number(new URL(server.url).port);
      const workers = childPids(server.child.pid!);
      assert.equal(workers.length, 2, 'two worker processes');
      const byWorker = <T>(items: readonly T[], localPort: (item: T) => number) => {
        const owners = connectionOwners(port, workers);
        return workers.map((pid) => items.filter((item) => owners.get(localPort(item)) === pid));
      };

      // Clients on both workers: the kernel picks the worker of each connection, and it may give
      // one worker nearly all of a burst, so keep connecting until both have some.
      const token = await site.driver.getToken({ username: 'ada' });
      let spread: TestClient[][] = [];
      while (clients.length < 400) {
        clients.push(await connectClient(server.url, token));
        spread = byWorker(clients, (client) => client.localPort);
        if (clients.length >= 8 && spread.every((list) => list.length >= 2)) break;
      }
      assert.ok(
        spread.every((list) => list.length >= 2),
        `clients on each worker: ${spread.map((list) => list.length)}`,
      );
      await waitForAuthenticated(server.url, clients.length);

      // One connection per publish, opened beforehand, and used so that consecutive publishes
      // go to different workers: the case where the old relay could swap two of them.
      const total = 500;
      let taken: Socket[][] = [];
      while (sockets.length < 4 * total) {
        sockets.push(await openSocket(port));
        if (sockets.length % 50 !== 0) continue;
        await sleep(20); // each worker accepts its connections
        taken = byWorker(sockets, (socket) => socket.localPort!);
        if (taken.every((list) => list.length >= total / 2)) break;
      }
      const order = alternate(taken).slice(0, total);
      assert.equal(order.length, total, `connections per worker: ${taken.map((l) => l.length)}`);

      const events = Array.from({ length: total }, (_, n) => bookEvent(books, n));
      for (const [n, socket] of order.entries()) {
        assert.equal(await publishOn(socket, events[n]!), 202);
      }
      for (const [i, client] of clients.entries()) {
        const frames = (await client.waitForFrames(total, 15_000)).map(String);
        assert.deepEqual(frames, events, `client ${i} receives all ${total}, in order`);
      }
      await sleep(200);
      assert.ok(
        clients.every((client) => client.frames.length === total),
        'and nothing more',
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      for (const client of clients) client.ws.terminate();
      await server.stop();
    }
  });

  it('with the redis bus, each worker subscribes and delivers every event', async () => {
    const server = await startWorkers('redis');
    const redis = new Redis(site.redisUrl);
    try {
      const subscribers = (await redis.pubsub('NUMSUB', site.channel)) as [string, number];
      assert.equal(Number(subscribers[1]), 2, 'one subscription per worker');
      const clients = await connectEveryone(server);
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
