/**
 * The end-to-end suite, written once and instantiated per database and user model: a real Django
 * site publishes admin actions on real Redis, a real sidecast server forwards them to WebSocket
 * clients authenticated with tokens from django-sesame's own get_token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import type { Sidecast } from '../../src/app.js';
import {
  createDjangoSite,
  type DjangoDialect,
  type DjangoSite,
  type DjangoUserModel,
} from './django.js';
import { closeOf, connectClient, type TestClient } from './client.js';
import {
  captureChannel,
  contentTypeOf,
  startSiteServer,
  tamper,
  type ChannelCapture,
} from './e2e.js';
import { waitFor } from './wait.js';

const VECTORS = fileURLToPath(new URL('../fixtures/sesame_v2.json', import.meta.url));

/** The v1 token of the recorded vectors: django-sesame < 2.0 format, which sidecast refuses. */
export function vectorV1Token(): string {
  const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as { v1_tokens: { token: string }[] };
  return vectors.v1_tokens[0]!.token;
}

/** Python run by the driver: a user by username, for the snippets below. */
const FIND_USER =
  'from django.contrib.auth import get_user_model\n' +
  'user = get_user_model()._default_manager.get_by_natural_key(args["username"])\n';

/** sesame.utils.get_token with time.time() moved back by args["age"] seconds. */
const TOKEN_FROM_THE_PAST = `${FIND_USER}import time
from unittest import mock
from sesame.utils import get_token
with mock.patch("time.time", return_value=time.time() - args["age"]):
    result = get_token(user)`;

/** A django-sesame v1 token, as django-sesame < 2.0 made them (still accepted by Python). */
const V1_TOKEN = `${FIND_USER}from sesame import tokens_v1
result = tokens_v1.create_token(user)`;

const DELETE_USER = `${FIND_USER}user.delete()`;

export const AUTH_FAILED = { code: 1011, reason: 'authentication failed' };

/** Users of the suite and the permissions the issue asks for. */
const PEOPLE = ['root', 'reader', 'editor', 'nobody', 'clerk'] as const;
type Person = (typeof PEOPLE)[number];

async function createPeople(site: DjangoSite): Promise<void> {
  const { driver } = site;
  await driver.createGroup({ name: 'book readers', perms: ['catalog.view_book'] });
  await driver.createUser({ username: 'root', isSuperuser: true, isStaff: true });
  await driver.createUser({ username: 'reader', password: 'r3ader!', groups: ['book readers'] });
  await driver.createUser({ username: 'editor', perms: ['catalog.change_author'] });
  await driver.createUser({ username: 'nobody', email: 'nobody@example.com' });
  // Adding and deleting never count: only view_ and change_ grant events.
  const clerkPerms = ['add_book', 'delete_book', 'add_author', 'delete_author'];
  await driver.createUser({ username: 'clerk', perms: clerkPerms.map((p) => `catalog.${p}`) });
}

export interface EndToEndCase {
  readonly dialect: DjangoDialect;
  readonly userModel: DjangoUserModel;
}

export function defineEndToEndSuite({ dialect, userModel }: EndToEndCase): void {
  void describe(`end to end on ${dialect} with ${userModel}`, () => {
    let site: DjangoSite;
    let capture: ChannelCapture;
    let app: Sidecast;
    const clients: TestClient[] = [];

    before(async () => {
      site = await createDjangoSite({ dialect, userModel });
      capture = await captureChannel(site.redisUrl, site.channel);
      app = await startSiteServer(site);
      await createPeople(site);
    });
    after(async () => {
      for (const client of clients) client.ws.terminate();
      await app?.close();
      await capture?.close();
      await site?.close();
    });

    async function connect(token: string): Promise<TestClient> {
      const client = await connectClient(app.url, token);
      clients.push(client);
      return client;
    }

    void test('each user receives exactly the events Django published that they may see', async () => {
      const { driver } = site;
      const [appLabel, modelName] = userModel.split('.') as [string, string];
      const book = await driver.contentTypeId({ appLabel: 'catalog', model: 'book' });
      const author = await driver.contentTypeId({ appLabel: 'catalog', model: 'author' });
      const users = await driver.contentTypeId({ appLabel, model: modelName });

      // What Django's own get_content_types() says, and that it is what the issue describes.
      const allowed = new Map<Person, Set<number>>();
      for (const person of PEOPLE) {
        allowed.set(person, new Set(await driver.getContentTypes({ username: person })));
      }
      assert.ok(allowed.get('root')!.has(book) && allowed.get('root')!.has(users));
      assert.deepEqual([...allowed.get('reader')!], [book]);
      assert.deepEqual([...allowed.get('editor')!], [author]);
      assert.deepEqual([...allowed.get('nobody')!], []);
      assert.deepEqual([...allowed.get('clerk')!], []);

      const live = new Map<Person, TestClient>();
      for (const person of PEOPLE) {
        live.set(person, await connect(await driver.getToken({ username: person })));
      }
      await waitFor(() => app.server.liveConnectionCount === PEOPLE.length, 10_000, 'all live');

      // Real admin views, as a logged-in superuser would use them.
      const ada = await driver.adminAdd({
        model: 'catalog.author',
        data: { name: 'Ada Lovelace' },
      });
      const notes = await driver.adminAdd({
        model: 'catalog.book',
        data: { title: 'Notes “on” the Engine — 𝔄', author: ada, year: 1843 },
      });
      await driver.adminChange({ model: 'catalog.book', pk: notes, data: { year: 1844 } });
      await driver.adminChange({
        model: 'catalog.author',
        pk: ada,
        data: { name: 'Ada, comtesse de Lovelace' },
        language: 'fr',
      });
      const nobody = (await driver.shell<string>(`${FIND_USER}result = str(user.pk)`, {
        username: 'nobody',
      }))!;
      await driver.adminChange({ model: userModel, pk: nobody, data: { first_name: 'Zoë' } });
      await driver.adminDelete({ model: 'catalog.book', pk: notes });
      await driver.adminDelete({ model: 'catalog.author', pk: ada });

      const published = await capture.waitFor(7);
      assert.deepEqual(published.map(contentTypeOf), [
        author,
        book,
        book,
        author,
        users,
        book,
        author,
      ]);
      const expected = new Map<Person, Buffer[]>();
      for (const person of PEOPLE) {
        const mine = published.filter((payload) =>
          allowed.get(person)!.has(contentTypeOf(payload)!),
        );
        expected.set(person, mine);
        await live.get(person)!.waitForFrames(mine.length);
      }
      assert.deepEqual(
        PEOPLE.map((person) => expected.get(person)!.length),
        [7, 3, 3, 0, 0],
      );
      // Every allowed frame is in; give a stray one the time to show up before counting.
      await sleep(300);
      for (const person of PEOPLE) {
        const client = live.get(person)!;
        const want = expected.get(person)!;
        assert.equal(client.frames.length, want.length, `${person}: number of events`);
        client.frames.forEach((frame, i) => {
          assert.ok(frame.equals(want[i]!), `${person} #${i}: ${frame} != ${want[i]}`);
        });
        assert.equal(client.binaryFrames, 0);
      }
      assert.equal(capture.payloads.length, 7, 'no other event was published meanwhile');
      for (const client of live.values()) client.ws.close();
      await waitFor(() => app.server.connectionCount === 0, 10_000, 'clients gone');
    });

    void test('a burst of connections all authenticate, and each gets an event once', async () => {
      const { driver } = site;
      const tokens = await Promise.all(
        PEOPLE.map(
          async (person) => [person, await driver.getToken({ username: person })] as const,
        ),
      );
      // More connections at once than the database pool has connections.
      const burst = await Promise.all(
        Array.from({ length: 60 }, async (_, i) => {
          const [person, token] = tokens[i % tokens.length]!;
          return { person, client: await connect(token) };
        }),
      );
      await waitFor(() => app.server.liveConnectionCount === burst.length, 20_000, 'burst live');
      const pk = await driver.adminAdd({ model: 'catalog.author', data: { name: 'Burst' } });
      const published = await capture.waitFor(8);
      const event = published[7]!;
      assert.equal((JSON.parse(event.toString()) as { object_id: string }).object_id, pk);
      const receivers = burst.filter(({ person }) => person === 'root' || person === 'editor');
      for (const { client } of receivers) await client.waitForFrames(1);
      await sleep(200);
      for (const { person, client } of burst) {
        const wanted = receivers.some((receiver) => receiver.client === client) ? 1 : 0;
        assert.equal(client.frames.length, wanted, `${person}: frames`);
        if (wanted) assert.ok(client.frames[0]!.equals(event));
        client.ws.close();
      }
      await waitFor(() => app.server.connectionCount === 0, 10_000, 'burst gone');
    });

    void test('bad tokens and refused users get 1011 "authentication failed"', async () => {
      const { driver } = site;
      for (const username of ['sleeper', 'ghost', 'mover'])
        await driver.createUser({ username, password: 'pw-1', groups: ['book readers'] });
      await driver.createUser({ username: 'retired', isSuperuser: true, isActive: false });

      const sleeper = await driver.getToken({ username: 'sleeper' });
      await driver.setActive({ username: 'sleeper', active: false });
      const ghost = await driver.getToken({ username: 'ghost' });
      await driver.shell(DELETE_USER, { username: 'ghost' });
      const mover = await driver.getToken({ username: 'mover' });
      await driver.setPassword({ username: 'mover', password: 'pw-1' });
      const valid = await driver.getToken({ username: 'reader' });
      const recent = await driver.shell<string>(TOKEN_FROM_THE_PAST, {
        username: 'reader',
        age: 20,
      });

      const refused: Record<string, string> = {
        'inactive user': sleeper,
        'inactive superuser': await driver.getToken({ username: 'retired' }),
        'deleted user': ghost,
        'password changed': mover,
        // SESAME_MAX_AGE is 30 on the site.
        expired: (await driver.shell<string>(TOKEN_FROM_THE_PAST, {
          username: 'reader',
          age: 31,
        }))!,
        'tampered signature': tamper(valid, -3),
        'tampered primary key': tamper(valid, 1),
        'scope "other"': await driver.getToken({ username: 'reader', scope: 'other' }),
        'with a character appended': `${valid}A`,
        // Python does not trim: surrounding whitespace makes the token invalid.
        'with a newline': `${valid}\n`,
        'with a leading space': ` ${valid}`,
        empty: '',
      };
      // Django agrees: sesame.utils.get_user refuses every one of them.
      for (const [name, token] of Object.entries(refused)) {
        assert.equal(await driver.getUser({ token }), null, `Django accepted the ${name} token`);
      }
      // v1 tokens: Python still accepts them by default; sidecast deliberately does not.
      const v1 = (await driver.shell<string>(V1_TOKEN, { username: 'reader' }))!;
      assert.match(v1, /^[A-Za-z0-9_-]{4,}:[0-9A-Za-z]{6}:[A-Za-z0-9_-]{27}$/);
      assert.equal(await driver.getUser({ token: v1 }), 'reader');
      refused['v1 from django-sesame'] = v1;
      refused['v1 of the recorded vectors'] = vectorV1Token();

      // The controls: the same user, with a fresh token and one 20 seconds old, gets in.
      assert.equal(await driver.getUser({ token: recent! }), 'reader');
      const accepted = [await connect(valid), await connect(recent!)];
      const rejected = await Promise.all(
        Object.values(refused).map(async (token) =>
          // A token let in is reported by name below rather than as a bare timeout.
          closeOf(await connect(token)).catch(() => ({ code: 0, reason: 'let in' })),
        ),
      );
      assert.deepEqual(
        Object.fromEntries(Object.keys(refused).map((name, i) => [name, rejected[i]])),
        Object.fromEntries(Object.keys(refused).map((name) => [name, AUTH_FAILED])),
      );
      await waitFor(() => app.server.liveConnectionCount === 2, 10_000, 'the controls live');
      for (const client of accepted) client.ws.close();
    });
  });
}
