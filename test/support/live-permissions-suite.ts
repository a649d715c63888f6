/**
 * Live permissions, end to end, written once and instantiated per database: a real Django site
 * changes users through its admin, its signals (django_sidecast's permissions.py) say
 * so on the real Redis control channel, and real sidecast servers apply the change to open
 * WebSocket connections. Each case runs in two modes:
 *
 * - control message: servers that read the channel Django publishes to, with no scheduled
 *   re-check at all (--permissions-refresh 0), so only the message can have done it: within 1 s;
 * - drop-in: a server whose control channel nobody publishes to, re-checking every second: within
 *   the interval (plus the time one round takes on a shared machine).
 *
 * While a change is made, the test publishes a steady stream of numbered events ("ticks") of each
 * content type involved straight on the events channel, so that what a client received can be
 * compared with what was published, one by one: every tick of a type the user keeps, a prefix of
 * the ticks of a type they lose, a suffix of those of a type they gain, and nothing else.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import WebSocket from 'ws';
import type { Sidecast } from '../../src/app.js';
import { MAX_CONTROL_IDS } from '../../src/server/control-message.js';
import { closeOf, connectClient, liveClient, type TestClient } from './client.js';
import {
  createDjangoSite,
  type DjangoDialect,
  type DjangoSite,
  type DjangoUserModel,
} from './django.js';
import { captureChannel, startSiteServer, type ChannelCapture } from './e2e.js';
import { captureLogs, type CapturedLogs } from './observe.js';
import { countPostgresQueries, userQueries } from './pg-queries.js';
import { counted } from './metrics.js';
import { waitFor } from './wait.js';

const ACCESS_REVOKED = { code: 1008, reason: 'access revoked' };
const AUTH_FAILED = { code: 1011, reason: 'authentication failed' };
/** The bound for a control message. */
const CONTROL_WITHIN_MS = 1000;
/** The drop-in server's --permissions-refresh. */
const REFRESH_SECONDS = 1;
/**
 * Rounds keep a fixed cadence, so a user is re-read at most the interval after the read that
 * missed the change, plus the time that read takes and timers running late: on a shared machine
 * running the whole suite, reads of a few hundred milliseconds were seen.
 */
const DROP_IN_WITHIN_MS = REFRESH_SECONDS * 1000 + 800;
const TICK_EVERY_MS = 15;

type Model = 'book' | 'author' | 'group';
type Fate = 'kept' | 'lost' | 'gained' | 'never';
/** What a change does to each model a case ticks, in the order the ticks go round. */
type Fates = Partial<Record<Model, Fate>>;

interface Mode {
  readonly name: string;
  readonly app: () => Sidecast;
  readonly withinMs: number;
  /** Resolves once the connections just opened are as any other live one for this mode. */
  readonly settle: () => Promise<void>;
}

interface Tick {
  readonly seq: number;
  readonly model: Model;
  /** When the test handed it to Redis (performance.now()). */
  readonly at: number;
}

/** Numbered events of some content types, published round-robin on the events channel. */
function startTicker(
  redis: Redis,
  channel: string,
  contentTypes: ReadonlyMap<Model, number>,
): { readonly run: string; readonly published: Tick[]; stop(): Promise<void> } {
  const run = randomBytes(6).toString('hex');
  const models = [...contentTypes.keys()];
  const published: Tick[] = [];
  const sends: Promise<unknown>[] = [];
  const timer = setInterval(() => {
    const model = models[published.length % models.length]!;
    const seq = published.length;
    const event = { content_type_id: contentTypes.get(model), run, seq, model };
    published.push({ seq, model, at: performance.now() });
    sends.push(redis.publish(channel, JSON.stringify(event)));
  }, TICK_EVERY_MS);
  return {
    run,
    published,
    async stop() {
      clearInterval(timer);
      await Promise.all(sends);
    },
  };
}

/** The sequence numbers of `run`'s ticks of `model` that the client received, in order. */
function ticksReceived(client: TestClient, run: string, model: Model): number[] {
  const seqs: number[] = [];
  for (const text of client.messages) {
    const event = JSON.parse(text) as { run?: string; model?: string; seq?: number };
    if (event.run === run && event.model === model) seqs.push(event.seq!);
  }
  return seqs;
}

/**
 * Resolves once `count` scheduled re-check batches have completed from now. A round lists the
 * users live when it begins, so a connection opened meanwhile waits for the next round: the
 * second batch to complete (one batch per round below 500 users) has surely read it once, and
 * from then on it is re-read every interval, as every long-lived connection is.
 */
async function refreshBatches(app: Sidecast, count: number): Promise<void> {
  const read = () => counted(app.metrics.permissionRechecks, { trigger: 'refresh' });
  let last = await read();
  let seen = 0;
  await waitFor(
    async () => {
      const now = await read();
      if (now !== last) seen++;
      last = now;
      return seen >= count;
    },
    REFRESH_SECONDS * 1000 * (count + 1) + 5000,
    `${count} re-check batches`,
  );
}

async function subscribers(redis: Redis, channel: string): Promise<number> {
  const reply = (await redis.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

/**
 * Makes other connections' reads of `table` wait (PostgreSQL: an ACCESS EXCLUSIVE lock in an
 * open transaction; MySQL and MariaDB: LOCK TABLES … WRITE) until released.
 */
async function holdTable(
  dialect: 'postgres' | 'mysql',
  dbUrl: string,
  table: string,
): Promise<{ blocking: () => Promise<boolean>; release: () => Promise<void> }> {
  const database = new URL(dbUrl).pathname.slice(1);
  if (dialect === 'postgres') {
    const holder = new pg.Client(dbUrl);
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    return {
      async blocking() {
        const { rows } = await holder.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sidecast' AND wait_event_type = 'Lock'",
          [database],
        );
        return Number(rows[0]!.n) > 0;
      },
      async release() {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
      },
    };
  }
  const holder = await mysql.createConnection(dbUrl);
  await holder.query(`LOCK TABLES ${table} WRITE`);
  return {
    async blocking() {
      // INFORMATION_SCHEMA stays readable to a session holding table locks.
      const [rows] = await holder.query(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE LIKE 'Waiting for table%'",
        [database],
      );
      return Number((rows as { n: number }[])[0]!.n) > 0;
    },
    async release() {
      await holder.query('UNLOCK TABLES').catch(() => undefined);
      await holder.end();
    },
  };
}

export interface LivePermissionsCase {
  readonly dialect: DjangoDialect;
  /** Default auth.User; the custom ones are changed through the same UserAdmin. */
  readonly userModel?: DjangoUserModel;
  /** A Redis database of its own (pub/sub channels are unique names as well). */
  readonly redisDb: number;
}

export function defineLivePermissionsSuite({
  dialect,
  userModel = 'auth.User',
  redisDb,
}: LivePermissionsCase): void {
  void describe(`live permissions on ${dialect} with ${userModel}`, () => {
    const suffix = randomBytes(4).toString('hex');
    const controlChannel = `sidecast-test-control-${suffix}`;
    let site: DjangoSite;
    let redis: Redis;
    let capture: ChannelCapture;
    /** Two instances on Django's control channel, no schedule. */
    let controlApp: Sidecast;
    let controlPeer: Sidecast;
    let controlLogs: CapturedLogs;
    /** Deaf to Django's control channel, re-checking every REFRESH_SECONDS. */
    let dropInApp: Sidecast;
    const contentTypes = new Map<Model, number>();
    const groupPks = new Map<string, number>();
    /** auth_permission pks of catalog's view_ permissions, as the admin's selects name them. */
    const permissionPks = new Map<string, number>();
    const clients: TestClient[] = [];
    let people = 0;

    const modes: Mode[] = [
      {
        name: 'control message',
        app: () => controlApp,
        withinMs: CONTROL_WITHIN_MS,
        settle: async () => undefined,
      },
      {
        name: 'drop-in',
        app: () => dropInApp,
        withinMs: DROP_IN_WITHIN_MS,
        settle: () => refreshBatches(dropInApp, 2),
      },
    ];

    before(async () => {
      site = await createDjangoSite({
        dialect,
        userModel,
        redisUrl: `redis://127.0.0.1:6379/${redisDb}`,
        // django-sesame's default is off; on, an email change must revoke like a password change.
        sesame: { INVALIDATE_ON_EMAIL_CHANGE: 'True' },
        env: { SIDECAST_CONTROL_CHANNEL: controlChannel },
      });
      redis = new Redis(site.redisUrl, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
      redis.on('error', () => undefined);
      capture = await captureChannel(site.redisUrl, site.channel);
      controlLogs = captureLogs();
      const control = ['--control-channel', controlChannel, '--permissions-refresh', '0'];
      controlApp = await startSiteServer(site, control, controlLogs.logger);
      controlPeer = await startSiteServer(site, control);
      dropInApp = await startSiteServer(site, [
        '--control-channel',
        `${controlChannel}-nobody-publishes-here`,
        '--permissions-refresh',
        String(REFRESH_SECONDS),
      ]);
      // The servers read the control channel once they listen: wait until Redis has them.
      await waitFor(
        async () => (await subscribers(redis, controlChannel)) === 2,
        10_000,
        'both control servers subscribed',
      );
      const { driver } = site;
      for (const [model, appLabel] of [
        ['book', 'catalog'],
        ['author', 'catalog'],
        ['group', 'auth'],
      ] as const) {
        contentTypes.set(model, await driver.contentTypeId({ appLabel, model }));
      }
      for (const [name, perm] of [
        ['book readers', 'catalog.view_book'],
        ['author readers', 'catalog.view_author'],
      ]) {
        groupPks.set(name, (await driver.createGroup({ name: name!, perms: [perm!] })).pk);
      }
      for (const codename of ['view_book', 'view_author']) {
        const pk = await driver.shell<number>(
          'from django.contrib.auth.models import Permission\n' +
            'result = Permission.objects.get(content_type__app_label="catalog", codename=args["codename"]).pk',
          { codename },
        );
        permissionPks.set(codename, pk);
      }
    });
    after(async () => {
      for (const client of clients) client.ws.terminate();
      await Promise.all([controlApp?.close(), controlPeer?.close(), dropInApp?.close()]);
      await capture?.close();
      await redis?.quit().catch(() => redis.disconnect());
      await site?.close();
    });

    /** A fresh user for one case; its name says which. */
    async function createPerson(
      role: string,
      options: { groups?: string[]; isSuperuser?: boolean; isStaff?: boolean } = {},
    ): Promise<{ pk: string; username: string; token: () => Promise<string> }> {
      const username = `${role.replace(/\W+/g, '-')}-${++people}`;
      const { pk } = await site.driver.createUser({ username, ...options });
      return { pk, username, token: () => site.driver.getToken({ username }) };
    }

    async function connect(app: Sidecast, token: string): Promise<TestClient> {
      const client = await liveClient(app, token);
      clients.push(client);
      return client;
    }

    /** One tab of `person` on each of the two control instances. */
    async function connectToBoth(person: { token: () => Promise<string> }): Promise<TestClient[]> {
      return [
        await connect(controlApp, await person.token()),
        await connect(controlPeer, await person.token()),
      ];
    }

    function ticksFor(fates: ReadonlyMap<Model, Fate>): Map<Model, number> {
      return new Map([...fates.keys()].map((model) => [model, contentTypes.get(model)!]));
    }

    /**
     * Publishes ticks of every model in `fates` while `change` is made, and checks each client's
     * ticks against what was published: all of a kept model's, a prefix of a lost one's (all
     * those published before the change began, none from `withinMs` after it was made), a
     * suffix of a gained one's (the converse), none of a model never allowed. The clients must
     * stay open throughout: same sockets, no reconnect.
     */
    async function changeWhileTicking(
      connected: readonly TestClient[],
      wanted: Fates,
      withinMs: number,
      change: () => Promise<unknown>,
    ): Promise<string> {
      const fates = new Map(Object.entries(wanted) as [Model, Fate][]);
      const closes = connected.map(() => false);
      connected.forEach((client, i) => void client.closed.then(() => (closes[i] = true)));
      const ticker = startTicker(redis, site.channel, ticksFor(fates));
      const modelsOf = (fate: Fate) => [...fates].filter(([, f]) => f === fate).map(([m]) => m);
      const seqsOf = (model: Model) =>
        ticker.published.filter((tick) => tick.model === model).map((tick) => tick.seq);
      try {
        // The state before: a few ticks of each model the user may see already.
        for (const client of connected) {
          for (const model of [...modelsOf('kept'), ...modelsOf('lost')]) {
            await waitFor(
              () => ticksReceived(client, ticker.run, model).length >= 2,
              5000,
              `${model} ticks before the change`,
            );
          }
        }
        const began = performance.now();
        await change();
        const made = performance.now();
        // Seen from a client: a tick of a lost model skipped while a later one of a kept model
        // arrived; or a tick of a gained model.
        const applied = (client: TestClient): boolean => {
          const latest = Math.max(
            -1,
            ...modelsOf('kept').flatMap((model) => ticksReceived(client, ticker.run, model)),
          );
          const lost = modelsOf('lost').every((model) => {
            const next = seqsOf(model)[ticksReceived(client, ticker.run, model).length];
            return next !== undefined && next < latest;
          });
          const gained = modelsOf('gained').every(
            (model) => ticksReceived(client, ticker.run, model).length > 0,
          );
          return lost && gained;
        };
        await waitFor(
          () => connected.every(applied),
          withinMs + 5000,
          'the change to reach every connection',
        );
        // A while longer, so that a late or partial update would show.
        await sleep(300);
        await ticker.stop();
        const published = ticker.published;
        for (const client of connected) {
          const lastKept = modelsOf('kept').map((model) => seqsOf(model).at(-1)!);
          await waitFor(
            () =>
              modelsOf('kept').every((model, i) =>
                ticksReceived(client, ticker.run, model).includes(lastKept[i]!),
              ),
            5000,
            'the last ticks of the kept models',
          );
        }
        await sleep(100);
        const latencies: string[] = [];
        const publishedBefore = (model: Model) =>
          published.filter((tick) => tick.model === model && tick.at < began).length;
        connected.forEach((client, i) => {
          const who = `client ${i}`;
          for (const [model, fate] of fates) {
            const all = seqsOf(model);
            const got = ticksReceived(client, ticker.run, model);
            if (fate === 'kept') {
              assert.deepEqual(got, all, `${who}: every ${model} tick, in order`);
            } else if (fate === 'never') {
              assert.deepEqual(got, [], `${who}: no ${model} tick`);
            } else if (fate === 'lost') {
              assert.deepEqual(got, all.slice(0, got.length), `${who}: ${model} ticks, a prefix`);
              assert.ok(got.length >= publishedBefore(model), `${who}: ${model} lost too early`);
              const firstMissed = published[all[got.length]!]!;
              const after = firstMissed.at - made;
              latencies.push(`${model} lost ${Math.round(after)} ms`);
              assert.ok(
                after <= withinMs,
                `${who}: ${model} still delivered ${Math.round(after)} ms after the change`,
              );
            } else {
              const skipped = all.length - got.length;
              assert.ok(got.length > 0, `${who}: some ${model} ticks`);
              assert.deepEqual(got, all.slice(skipped), `${who}: ${model} ticks, a suffix`);
              assert.ok(skipped >= publishedBefore(model), `${who}: ${model} gained too early`);
              const firstSent = published[all[skipped]!]!;
              const after = firstSent.at - made;
              latencies.push(`${model} gained ${Math.round(after)} ms`);
              assert.ok(
                after <= withinMs,
                `${who}: ${model} first delivered ${Math.round(after)} ms after the change`,
              );
            }
          }
          assert.equal(closes[i], false, `${who} was closed`);
          assert.equal(client.ws.readyState, WebSocket.OPEN, `${who} is open`);
        });
        const ticks = published.length;
        return `${ticks} ticks; after the change was made: ${latencies.join(', ')}`;
      } finally {
        await ticker.stop();
      }
    }

    /** The admin events Django publishes from now on, and which of them each client received. */
    async function adminEventsAfter(
      connected: readonly TestClient[],
      make: () => Promise<unknown>,
      published: number,
    ): Promise<{ events: Buffer[]; received: Buffer[][] }> {
      const mark = capture.payloads.length;
      const seen = connected.map((client) => client.frames.length);
      await make();
      const events = (await capture.waitFor(mark + published)).slice(mark);
      await sleep(300);
      return { events, received: connected.map((client, i) => client.frames.slice(seen[i])) };
    }

    async function bookAndAuthorFromTheAdmin(name: string): Promise<void> {
      const author = await site.driver.adminAdd({ model: 'catalog.author', data: { name } });
      await site.driver.adminAdd({
        model: 'catalog.book',
        data: { title: `A book by ${name}`, author, year: 1900 },
      });
    }

    /**
     * A mode's case: once the mode has settled the clients just opened, `change` is made while
     * ticking, within the mode's bound; what it measured goes to the test's diagnostics.
     */
    async function changeInMode(
      t: TestContext,
      mode: Mode,
      connected: readonly TestClient[],
      fates: Fates,
      change: () => Promise<unknown>,
    ): Promise<void> {
      await mode.settle();
      t.diagnostic(await changeWhileTicking(connected, fates, mode.withinMs, change));
    }

    function closeAll(connected: readonly TestClient[]): Promise<void> {
      for (const client of connected) client.ws.close();
      return waitFor(
        () => connected.every((client) => client.ws.readyState === WebSocket.CLOSED),
        5000,
        'clients closed',
      );
    }

    for (const mode of modes) {
      void describe(`${mode.name} mode`, () => {
        void test('a user removed from a group on the admin change form stops receiving that model, and nothing else changes', async (t) => {
          const app = mode.app();
          const user = await createPerson(`loses ${mode.name}`, {
            groups: ['book readers', 'author readers'],
          });
          const tabs = [
            await connect(app, await user.token()),
            await connect(app, await user.token()),
          ];
          await changeInMode(t, mode, tabs, { book: 'lost', author: 'kept', group: 'never' }, () =>
            site.driver.adminChange({
              model: userModel,
              pk: user.pk,
              data: { groups: [groupPks.get('author readers')!] },
            }),
          );
          // And Django's own events: the author's only.
          const { events, received } = await adminEventsAfter(
            tabs,
            () => bookAndAuthorFromTheAdmin(`Kept ${mode.name}`),
            2,
          );
          for (const frames of received) assert.deepEqual(frames, [events[0]]);
          await closeAll(tabs);
        });

        void test('a user given a permission on the admin change form starts receiving that model on the same socket', async (t) => {
          const app = mode.app();
          const user = await createPerson(`gains ${mode.name}`, { groups: ['author readers'] });
          const tab = await connect(app, await user.token());
          await changeInMode(
            t,
            mode,
            [tab],
            { book: 'gained', author: 'kept', group: 'never' },
            () =>
              site.driver.adminChange({
                model: userModel,
                pk: user.pk,
                data: { user_permissions: [permissionPks.get('view_book')!] },
              }),
          );
          const { events, received } = await adminEventsAfter(
            [tab],
            () => bookAndAuthorFromTheAdmin(`Gained ${mode.name}`),
            2,
          );
          assert.deepEqual(received[0], events);
          await closeAll([tab]);
        });

        void test('a group deleted from the admin stops its models for its live members, who keep those of their other groups', async (t) => {
          const app = mode.app();
          const group = await site.driver.createGroup({
            name: `doomed ${mode.name}`,
            perms: ['catalog.view_book'],
          });
          const member = await createPerson(`member of doomed ${mode.name}`, {
            groups: [group.name, 'author readers'],
          });
          const tab = await connect(app, await member.token());
          await changeInMode(t, mode, [tab], { book: 'lost', author: 'kept', group: 'never' }, () =>
            site.driver.adminDelete({ model: 'auth.Group', pk: group.pk }),
          );
          await closeAll([tab]);
        });

        void test("a group's permission removed on the admin group form stops that model for its live members", async (t) => {
          const app = mode.app();
          const group = await site.driver.createGroup({
            name: `shelf ${mode.name}`,
            perms: ['catalog.view_book', 'catalog.view_author'],
          });
          const member = await createPerson(`member ${mode.name}`, { groups: [group.name] });
          const tab = await connect(app, await member.token());
          await changeInMode(t, mode, [tab], { book: 'lost', author: 'kept', group: 'never' }, () =>
            site.driver.adminChange({
              model: 'auth.Group',
              pk: group.pk,
              data: { permissions: [permissionPks.get('view_author')!] },
            }),
          );
          await closeAll([tab]);
        });

        void test('a superuser demoted to staff on the admin change form loses every model they have no permission for', async (t) => {
          const app = mode.app();
          const user = await createPerson(`demoted ${mode.name}`, {
            isSuperuser: true,
            isStaff: true,
            groups: ['author readers'],
          });
          const tab = await connect(app, await user.token());
          await changeInMode(t, mode, [tab], { book: 'lost', author: 'kept', group: 'lost' }, () =>
            site.driver.adminChange({
              model: userModel,
              pk: user.pk,
              data: { is_superuser: false, is_staff: true },
            }),
          );
          const staff = await site.driver.shell<boolean[]>(
            'from django.contrib.auth import get_user_model\n' +
              'u = get_user_model().objects.get(pk=args["pk"])\n' +
              'result = [u.is_superuser, u.is_staff]',
            { pk: user.pk },
          );
          assert.deepEqual(staff, [false, true]);
          await closeAll([tab]);
        });

        const revocations: [string, (pk: string) => Promise<unknown>][] = [
          [
            'deactivated on the admin change form',
            (pk) => site.driver.adminChange({ model: userModel, pk, data: { is_active: false } }),
          ],
          ['deleted from the admin', (pk) => site.driver.adminDelete({ model: userModel, pk })],
          [
            'given a new password on the admin password form',
            (pk) => site.driver.adminPasswordChange({ pk, password: 'n3w-Passw0rd-after-a-leak' }),
          ],
          [
            'given a new email address on the admin change form (SESAME_INVALIDATE_ON_EMAIL_CHANGE)',
            (pk) =>
              site.driver.adminChange({
                model: userModel,
                pk,
                data: { email: `moved-${pk}@example.com` },
              }),
          ],
        ];
        for (const [what, change] of revocations) {
          void test(`a user ${what} is closed with 1008 "access revoked", every tab of them and nobody else`, async (t) => {
            const app = mode.app();
            const user = await createPerson(`${what} ${mode.name}`, { groups: ['book readers'] });
            const bystander = await createPerson(`bystander ${mode.name}`, {
              groups: ['book readers'],
            });
            const token = await user.token();
            const tabs = [await connect(app, token), await connect(app, token)];
            const other = await connect(app, await bystander.token());
            await mode.settle();
            const closedAt = tabs.map((tab) => tab.closed.then(() => performance.now()));
            await change(user.pk);
            const made = performance.now();
            const latencies: number[] = [];
            for (const [i, tab] of tabs.entries()) {
              assert.deepEqual(await closeOf(tab, mode.withinMs + 5000), ACCESS_REVOKED);
              const after = (await closedAt[i]!) - made;
              latencies.push(Math.round(after));
              assert.ok(after <= mode.withinMs, `tab ${i} closed ${Math.round(after)} ms after`);
            }
            t.diagnostic(`closed ${latencies.join(' and ')} ms after the change was made`);
            // The bystander, of the same group, still gets its events.
            await redis.publish(
              site.channel,
              JSON.stringify({ content_type_id: contentTypes.get('book'), after: what }),
            );
            await other.waitForMessages(1);
            assert.equal(other.ws.readyState, WebSocket.OPEN);
            // The token that was good a moment ago is no good any more, as Django agrees.
            assert.equal(await site.driver.getUser({ token }), null);
            const retry = await connectClient(app.url, token);
            clients.push(retry);
            assert.deepEqual(await closeOf(retry), AUTH_FAILED);
            await closeAll([other]);
          });
        }
      });
    }

    void test('a permission deleted from the database reaches every live user it granted, on both instances', async (t) => {
      // Nothing else in this suite uses change_book: deleting it leaves the other cases alone.
      const group = await site.driver.createGroup({
        name: 'book changers',
        perms: ['catalog.change_book'],
      });
      const user = await createPerson('book changer', { groups: [group.name, 'author readers'] });
      const tabs = await connectToBoth(user);
      // No admin page deletes a permission; the ORM does, and its post_delete says "all".
      t.diagnostic(
        await changeWhileTicking(tabs, { book: 'lost', author: 'kept' }, CONTROL_WITHIN_MS, () =>
          site.driver.shell(
            'from django.contrib.auth.models import Permission\n' +
              'Permission.objects.get(content_type__app_label="catalog", codename="change_book").delete()',
          ),
        ),
      );
      await closeAll(tabs);
    });

    void test('two instances: one control message re-checks the user on both', async (t) => {
      const user = await createPerson('on two instances', {
        groups: ['book readers', 'author readers'],
      });
      const rechecks = async () =>
        Promise.all(
          [controlApp, controlPeer].map((app) =>
            counted(app.metrics.permissionRechecks, { trigger: 'control' }),
          ),
        );
      const before = await rechecks();
      const tabs = await connectToBoth(user);
      t.diagnostic(
        await changeWhileTicking(tabs, { book: 'lost', author: 'kept' }, CONTROL_WITHIN_MS, () =>
          site.driver.adminChange({
            model: userModel,
            pk: user.pk,
            data: { groups: [groupPks.get('author readers')!] },
          }),
        ),
      );
      const rechecked = await rechecks();
      // At least the one user on each (the admin's save also names them, once per signal).
      for (const i of [0, 1]) assert.ok(rechecked[i]! > before[i]!, `instance ${i} re-checked`);
      await closeAll(tabs);
    });

    void test('malformed and unknown control messages are counted, logged once per kind, and disconnect nobody', async (t) => {
      const user = await createPerson('listens through junk', { groups: ['book readers'] });
      const tabs = await connectToBoth(user);
      const outcomes = async () =>
        Promise.all(
          ['applied', 'malformed', 'unknown'].map((outcome) =>
            counted(controlApp.metrics.controlMessages, { outcome }),
          ),
        );
      const [applied, malformed, unknown] = await outcomes();
      const linesBefore = controlLogs.lines.length;
      const junk = [
        'not json {',
        '',
        '[{"type": "users", "ids": ["1"]}]',
        '{"ids": ["1"]}',
        '{"type": "users"}',
        '{"type": "users", "ids": "1"}',
        JSON.stringify({
          type: 'users',
          ids: Array.from({ length: MAX_CONTROL_IDS + 1 }, (_, i) => String(i + 1)),
        }),
        '{"type": "users", "ids": [{"pk": 1}]}',
        '{"type": "users", "ids": [1.5]}',
        '{"type": "groups", "ids": [true]}',
        '{"type": "users", "ids": [null]}',
        `{"type": "users", "ids": ["${'9'.repeat(300)}"]}`,
      ];
      for (const text of junk) await redis.publish(controlChannel, text);
      await redis.publish(controlChannel, '{"type": "revoke-everyone", "ids": ["1"]}');
      // Then a good one, which is still read and applied.
      await redis.publish(controlChannel, JSON.stringify({ type: 'users', ids: [user.pk] }));
      await waitFor(
        async () => (await outcomes())[0] === applied! + 1,
        5000,
        'the good message to be applied',
      );
      assert.deepEqual(await outcomes(), [applied! + 1, malformed! + junk.length, unknown! + 1]);
      await controlApp.server.permissionsSettled();
      const dropped = controlLogs
        .entries()
        .slice(linesBefore)
        .filter((entry) => entry.msg === 'control message dropped');
      assert.deepEqual(
        dropped.map((entry) => entry.reason),
        ['malformed', 'unknown'],
      );
      // Everyone is still connected and served.
      for (const tab of tabs) assert.equal(tab.ws.readyState, WebSocket.OPEN);
      await redis.publish(
        site.channel,
        JSON.stringify({ content_type_id: contentTypes.get('book'), after: 'junk' }),
      );
      for (const tab of tabs) await tab.waitForMessages(1);
      t.diagnostic(`${junk.length + 1} bad messages, ${dropped.length} log lines`);
      await closeAll(tabs);
    });

    // SQLite locks the whole file: no way to hold one query and not the one before it.
    if (dialect !== 'sqlite') {
      void test('a user deactivated while their connection is being authenticated does not stay connected', async (t) => {
        const user = await createPerson('deactivated mid-authentication', {
          groups: ['book readers'],
        });
        const token = await user.token();
        const applied = () => counted(controlApp.metrics.controlMessages, { outcome: 'applied' });
        const appliedBefore = await applied();
        // Holds sidecast's permission query (which reads auth_group_permissions) after it has
        // read the user's row, still active: the authentication is then under way.
        const lock = await holdTable(dialect, site.dbUrl, 'auth_group_permissions');
        let client: TestClient | undefined;
        try {
          client = await connectClient(controlApp.url, token);
          clients.push(client);
          await waitFor(lock.blocking, 5000, 'the permission query to wait for the lock');
          await site.driver.adminChange({
            model: userModel,
            pk: user.pk,
            data: { is_active: false },
          });
          await waitFor(
            async () => (await applied()) > appliedBefore,
            5000,
            'the control message to arrive',
          );
        } finally {
          await lock.release();
        }
        const started = performance.now();
        const closed = await closeOf(client, CONTROL_WITHIN_MS + 2000).catch(() => undefined);
        t.diagnostic(
          `closed ${JSON.stringify(closed)} ${Math.round(performance.now() - started)} ms after the lock went`,
        );
        assert.ok(
          closed !== undefined && [AUTH_FAILED.code, ACCESS_REVOKED.code].includes(closed.code),
          `still connected as an active user: ${JSON.stringify(closed)}`,
        );
      });
    }

    if (dialect === 'postgres') {
      void test('a control message about users with no live connection costs no query', async (t) => {
        assert.equal(dropInApp.server.liveConnectionCount, 0, 'no other server reads the database');
        const live = await createPerson('live one', { groups: ['book readers'] });
        const offline = await createPerson('offline one', { groups: ['book readers'] });
        const tab = await connect(controlApp, await live.token());
        const database = new URL(site.dbUrl).pathname.slice(1);
        const counter = countPostgresQueries(database);
        try {
          const applied = await counted(controlApp.metrics.controlMessages, { outcome: 'applied' });
          const messages = [
            { type: 'users', ids: [offline.pk] },
            { type: 'users', ids: ['987654321'] },
            { type: 'users', ids: [offline.pk, '987654322'] },
          ];
          for (const message of messages) {
            await redis.publish(controlChannel, JSON.stringify(message));
          }
          await waitFor(
            async () =>
              (await counted(controlApp.metrics.controlMessages, { outcome: 'applied' })) ===
              applied + messages.length,
            5000,
            'the messages to be applied',
          );
          await sleep(100); // past the coalescing delay
          await Promise.all(
            [controlApp, controlPeer].map((app) => app.server.permissionsSettled()),
          );
          assert.deepEqual(counter.queries, [], 'no query for users not live here');
          t.diagnostic(`${messages.length} messages about users not live: 0 queries`);
          // The control: the live user costs one batched read (user, then permissions).
          await redis.publish(controlChannel, JSON.stringify({ type: 'users', ids: [live.pk] }));
          const reads = () => userQueries(counter.queries);
          await waitFor(() => reads().length >= 2, 5000, 'the live user to be read');
          await sleep(100);
          await Promise.all(
            [controlApp, controlPeer].map((app) => app.server.permissionsSettled()),
          );
          assert.equal(reads().length, 2, JSON.stringify(counter.queries));
        } finally {
          counter.stop();
        }
        await closeAll([tab]);
      });
    }
  });
}
