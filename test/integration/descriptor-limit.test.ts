/**
 * `sidecast serve` at its open-file limit (issue 16.1): the server runs under `prlimit`, with a
 * limit low enough for this test to reach with a few hundred sockets. At the cap new connections
 * are refused, counted and logged once per episode, connections already open keep working, and
 * once the sockets are closed the server accepts again within seconds: twice in a row, with one
 * worker and with two.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createSesameAuthenticator } from '../../src/auth/sesame/authenticator.js';
import { loadDjangoSettings } from '../../src/config.js';
import { createDjangoSqlite } from '../../src/demo/schema.js';
import { connectionCap, openFileLimit } from '../../src/server/descriptor-limit.js';
import { connectClient, type TestClient } from '../support/client.js';
import { processEnv } from '../support/e2e.js';
import { scrapeMetrics } from '../support/metrics.js';
import { httpGet } from '../support/observe.js';
import { childPids, connectionOwners, spawnServeGroup } from '../support/processes.js';
import { upgradeRequest } from '../support/raw-websocket.js';

const LIMIT = 300;
const CAP = connectionCap(LIMIT);
const SECRET = `fd-limit-${randomBytes(12).toString('hex')}`;
const REDIS_URL = 'redis://127.0.0.1:6379/0';
const CAP_MESSAGE = 'at the file-descriptor limit: refusing new connections until some close';
const REFUSED_SAMPLE = 'sidecast_connections_refused_total{reason="descriptor_limit"}';

type Outcome = 'upgraded' | 'refused' | 'no answer';

/** Accepted or refused, a connection hears about it at once: silence means it is stuck in a queue. */
const ANSWER_MS = 5000;

interface Attempt {
  readonly socket: Socket;
  readonly outcome: Promise<Outcome>;
}

/** A WebSocket upgrade on a raw socket, left open once it succeeds (no token: it just waits). */
function attemptUpgrade(port: number): Attempt {
  const socket = connect(port, '127.0.0.1');
  const outcome = new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => resolve('no answer'), ANSWER_MS);
    const settle = (how: Outcome) => {
      clearTimeout(timer);
      resolve(how);
    };
    let head = '';
    socket.on('connect', () => socket.write(upgradeRequest(port)));
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.startsWith('HTTP/1.1 101')) settle('upgraded');
    });
    // Closed before the 101, by a reset or an end: refused.
    socket.on('error', () => settle('refused'));
    socket.on('close', () => settle('refused'));
  });
  return { socket, outcome };
}

/**
 * Opens upgrades in batches (a burst would overflow the listen backlog instead) until every
 * process is at its cap: `room` connections are open and a whole batch after that is refused.
 * Each process accepts for itself, so one may fill up before another.
 */
async function fill(port: number, room: number): Promise<{ open: Socket[]; refused: number }> {
  const open: Socket[] = [];
  let refused = 0;
  for (let attempts = 0; attempts < 10 * room; attempts += 50) {
    const full = open.length === room;
    const batch = Array.from({ length: 50 }, () => attemptUpgrade(port));
    for (const attempt of batch) {
      const outcome = await attempt.outcome;
      if (outcome === 'upgraded') open.push(attempt.socket);
      else refused++;
      if (outcome === 'no answer') {
        for (const socket of [...open, ...batch.map((a) => a.socket)]) socket.destroy();
        assert.fail(
          `no answer within ${ANSWER_MS} ms after ${open.length} open, ${refused} refused`,
        );
      }
    }
    if (full) break;
  }
  return { open, refused };
}

function capLines(stderr: string): { pid: number }[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { pid: number; msg: string })
    .filter((entry) => entry.msg === CAP_MESSAGE);
}

describe(`sidecast serve under an open-file limit of ${LIMIT}`, () => {
  let dir: string;
  let database: string;
  let token: string;
  let bookType: number;
  let redis: Redis;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecast-fd-limit-'));
    database = join(dir, 'django.sqlite3');
    const site = createDjangoSqlite(database, {
      models: [{ label: 'catalog.book', verboseName: 'book' }],
      users: [{ username: 'ada', superuser: true }],
    });
    bookType = site.contentTypes.get('catalog.book')!;
    const authenticator = await createSesameAuthenticator({
      databaseUrl: `sqlite://${database}`,
      django: loadDjangoSettings({ DJANGO_SECRET_KEY: SECRET }),
      scope: '',
      poolSize: 1,
    });
    token = await authenticator.mintToken('ada');
    await authenticator.close();
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    redis?.disconnect();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads the limit the process runs under, and leaves room for the server itself', () => {
    const module = new URL('../../src/server/descriptor-limit.ts', import.meta.url).href;
    const script = `import('${module}').then((m) => console.log(m.openFileLimit()))`;
    const run = spawnSync(
      'prlimit',
      ['--nofile=321:321', process.execPath, '--import', 'tsx', '-e', script],
      { encoding: 'utf8' },
    );
    assert.equal(run.stdout.trim(), '321', run.stderr);
    assert.ok((openFileLimit() ?? 0) > LIMIT, 'this process has a higher limit');
    assert.equal(connectionCap(300), 200);
    assert.equal(connectionCap(65_536), 65_436);
    assert.equal(connectionCap(64), 32, 'at least half');
  });

  for (const workers of [2, 1]) {
    it(
      `--workers ${workers}: refuses at the cap, keeps open connections working, recovers every time`,
      { timeout: 120_000 },
      async () => {
        const channel = `sidecast-fd-limit-${randomBytes(6).toString('hex')}`;
        const served = spawnServeGroup(
          [
            ...['--workers', String(workers), '--port', '0', '--log-level', 'warn'],
            ...['--bus', 'redis', '--redis', REDIS_URL, '--channel', channel],
            ...['--django-db', `sqlite://${database}`],
            // Upgrades without a token stay open this long: the test holds them at the cap.
            ...['--auth-timeout', '60'],
          ],
          processEnv({ DJANGO_SECRET_KEY: SECRET }),
          { prefix: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`] },
        );
        const clients: TestClient[] = [];
        const held: Socket[] = [];
        let events = 0;
        /** Publishes on Redis (no new connection to the server) and waits for `receivers`. */
        const deliver = async (receivers: readonly TestClient[]) => {
          const payload = JSON.stringify({ content_type_id: bookType, n: events++ });
          const deadline = Date.now() + 10_000;
          while (
            !receivers.every((client) => client.frames.some((f) => f.toString() === payload))
          ) {
            assert.ok(Date.now() < deadline, `not delivered to every client: ${payload}`);
            await redis.publish(channel, payload);
            await sleep(100);
          }
        };
        try {
          const url = await served.listening;
          const port = Number(new URL(url).port);
          const pids = workers > 1 ? childPids(served.pgid) : [served.pgid];
          assert.equal(pids.length, workers);

          // Clients connected before the flood, on every worker.
          for (let tries = 0; tries < 30; tries++) {
            clients.push(await connectClient(url, token));
            const owners = connectionOwners(port, pids);
            const covered = pids.every((pid) =>
              clients.some((c) => owners.get(c.localPort) === pid),
            );
            if (covered) break;
          }
          await deliver(clients);

          let refusedSeen = 0;
          for (const episode of [1, 2]) {
            // Upgrades until every worker holds as many connections as it may.
            const room = workers * CAP - clients.length;
            const { open, refused } = await fill(port, room);
            held.push(...open);
            assert.equal(open.length, room, `episode ${episode}: ${CAP} connections per process`);
            assert.ok(refused >= 50, `episode ${episode}: ${refused} refused`);
            refusedSeen += refused;

            // At the cap: a new connection is refused, the open ones still get their events.
            const probe = attemptUpgrade(port);
            assert.equal(await probe.outcome, 'refused', 'a new connection at the cap');
            refusedSeen++;
            await deliver(clients);

            // Freed: accepted again within seconds, health check and WebSocket alike.
            for (const socket of held.splice(0)) socket.destroy();
            const freed = Date.now();
            for (;;) {
              const answer = await httpGet(port, '/healthz', 1000).catch(() => undefined);
              if (answer?.status === 200) break;
              refusedSeen++; // a health check refused while the workers catch up
              assert.ok(Date.now() - freed < 5000, '/healthz answers again within 5 s');
              await sleep(100);
            }
            const fresh = await connectClient(url, token);
            clients.push(fresh);
            await deliver([fresh]);
            assert.ok(Date.now() - freed < 5000, `recovered in ${Date.now() - freed} ms`);
          }

          // Every refusal was counted, and each process logged each episode once.
          const samples = await scrapeMetrics(port);
          assert.equal(samples.get(REFUSED_SAMPLE), refusedSeen, 'refusals counted');
          const lines = capLines(served.stderr());
          const perPid = new Map<number, number>();
          for (const { pid } of lines) perPid.set(pid, (perPid.get(pid) ?? 0) + 1);
          assert.ok(perPid.size > 0, `no "${CAP_MESSAGE}" line:\n${served.stderr()}`);
          for (const [pid, count] of perPid) {
            assert.ok(pids.includes(pid), `logged by a worker: ${pid}`);
            assert.equal(count, 2, `one line per episode from ${pid}:\n${served.stderr()}`);
          }

          for (const client of clients.splice(0)) client.ws.close();
          const { code } = await served.stop();
          assert.equal(code, 0, served.stderr());
        } finally {
          for (const socket of held) socket.destroy();
          for (const client of clients) client.ws.terminate();
          served.kill();
        }
      },
    );
  }
});
