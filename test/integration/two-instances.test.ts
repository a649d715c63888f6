/**
 * Two real `sidecast serve` processes on one Redis channel, configured only through the
 * environment a Django site exports: clients spread over both receive every event they may see
 * exactly once, whichever instance they are connected to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDjangoSite, type DjangoSite } from '../support/django.js';
import { closeOf, connectClient, type TestClient } from '../support/client.js';
import {
  captureChannel,
  contentTypeOf,
  processEnv,
  spawnServe,
  type ChannelCapture,
  type ServeProcess,
} from '../support/e2e.js';
import { metric, metricReaches } from '../support/metrics.js';
import { waitFor } from '../support/wait.js';

const PEOPLE = ['root', 'reader', 'editor', 'nobody'] as const;
type Person = (typeof PEOPLE)[number];

void describe('two sidecast instances on one Redis', () => {
  let site: DjangoSite;
  let capture: ChannelCapture;
  const instances: ServeProcess[] = [];
  const clients: { person: Person; instance: number; client: TestClient }[] = [];

  before(async () => {
    site = await createDjangoSite({ dialect: 'postgres' });
    capture = await captureChannel(site.redisUrl, site.channel);
    const { driver } = site;
    await driver.createGroup({ name: 'readers', perms: ['catalog.view_book'] });
    await driver.createUser({ username: 'root', isSuperuser: true });
    await driver.createUser({ username: 'reader', groups: ['readers'] });
    await driver.createUser({ username: 'editor', perms: ['catalog.change_author'] });
    await driver.createUser({ username: 'nobody' });
    // --django-db, --redis and --channel come from SIDECAST_* in the site's environment.
    const args = ['--port', '0', '--workers', '1', '--drain-seconds', '0.2', '--log-level', 'warn'];
    const env = processEnv(site.env);
    instances.push(...(await Promise.all([spawnServe(args, env), spawnServe(args, env)])));
  });
  after(async () => {
    for (const { client } of clients) client.ws.terminate();
    await Promise.all(instances.map((instance) => instance.stop()));
    await capture?.close();
    await site?.close();
  });

  void test('every event reaches every allowed client once, on either instance', async () => {
    const { driver } = site;
    assert.notEqual(instances[0]!.url, instances[1]!.url);
    // Everyone on both instances, and a second reader connection on the second one.
    const layout: [Person, number][] = [
      ...PEOPLE.map((person): [Person, number] => [person, 0]),
      ...PEOPLE.map((person): [Person, number] => [person, 1]),
      ['reader', 1],
    ];
    for (const [person, instance] of layout) {
      const token = await driver.getToken({ username: person });
      clients.push({
        person,
        instance,
        client: await connectClient(instances[instance]!.url, token),
      });
    }
    for (const [index, instance] of instances.entries()) {
      const expected = layout.filter(([, at]) => at === index).length;
      const authenticated = () =>
        metric(instance.url, 'sidecast_authentications_total{outcome="success"}');
      const what = `instance ${index}: clients authenticated`;
      await waitFor(async () => (await authenticated()) >= expected, 10_000, what, 50);
    }

    const author = await driver.adminAdd({ model: 'catalog.author', data: { name: 'Émilie' } });
    const book = await driver.adminAdd({
      model: 'catalog.book',
      data: { title: 'Institutions de physique', author },
    });
    await driver.adminChange({ model: 'catalog.book', pk: book, data: { year: 1740 } });
    const nobody = await driver.shell<string>(
      'from django.contrib.auth.models import User\n' +
        'result = str(User.objects.get(username="nobody").pk)',
    );
    await driver.adminChange({ model: 'auth.user', pk: nobody!, data: { last_name: 'N' } });
    await driver.adminDelete({ model: 'catalog.book', pk: book });
    await driver.adminDelete({ model: 'catalog.author', pk: author });
    const published = await capture.waitFor(6);

    const allowed = new Map<Person, Set<number>>();
    for (const person of PEOPLE)
      allowed.set(person, new Set(await driver.getContentTypes({ username: person })));
    const expectedFor = (person: Person) =>
      published.filter((payload) => allowed.get(person)!.has(contentTypeOf(payload)!));
    assert.deepEqual(
      PEOPLE.map((person) => expectedFor(person).length),
      [6, 3, 2, 0],
    );
    for (const { person, client } of clients)
      await client.waitForFrames(expectedFor(person).length);
    await sleep(300);
    for (const { person, instance, client } of clients) {
      const want = expectedFor(person);
      const where = `${person} on instance ${instance}`;
      assert.equal(client.frames.length, want.length, `${where}: number of events`);
      client.frames.forEach((frame, i) => assert.ok(frame.equals(want[i]!), `${where} #${i}`));
    }

    // Each instance took each event from Redis once and wrote it once per allowed connection.
    for (const [index, instance] of instances.entries()) {
      const mine = clients.filter((entry) => entry.instance === index);
      const frames = mine.reduce((sum, entry) => sum + expectedFor(entry.person).length, 0);
      assert.equal(await metricReaches(instance.url, 'sidecast_events_received_total', 6), 6);
      assert.equal(await metric(instance.url, 'sidecast_events_delivered_total'), frames);
    }
  });

  void test('SIGTERM drains each instance: clients are told 1001 and the process exits 0', async () => {
    const codes = await Promise.all(instances.map((instance) => instance.stop()));
    assert.deepEqual(codes, [0, 0], instances.map((i) => i.output().stderr).join('\n'));
    for (const { client } of clients) {
      assert.deepEqual(await closeOf(client), { code: 1001, reason: 'server shutting down' });
    }
  });
});
