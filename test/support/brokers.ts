import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { connect } from 'nats';
import { spawnTracked, stopChild } from './children.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/**
 * Brokers of several nodes that tests start on free ports and break on purpose: a NATS cluster
 * (routes between the servers, JetStream on) and a Redis Cluster of masters with a replica each.
 * Every process is tracked (./children.ts), and its files live in a temporary folder removed by
 * stop().
 */

export interface NatsNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** SIGKILLs the server. */
  kill(): Promise<void>;
  /** Starts it again on its port, with its store. */
  start(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Every server's URL, comma-separated, as --nats takes them. */
  readonly urls: string;
  stop(): Promise<void>;
}

/** Whether a nats-server answers at `url` now: one connection attempt, no retries. */
export async function natsAnswers(url: string): Promise<boolean> {
  try {
    const connection = await connect({ servers: url, timeout: 500, reconnect: false });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

/** `size` nats-server processes routed to each other, JetStream on, each with its own store. */
export async function createNatsCluster(size = 3): Promise<NatsCluster> {
  const folder = mkdtempSync(join(tmpdir(), 'sidecast-nats-'));
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((port) => `nats://127.0.0.1:${port}`).join(',');
  const nodes = ports.map((port, i): NatsNode & { child?: ChildProcess } => {
    const name = `n${i + 1}`;
    const node: NatsNode & { child?: ChildProcess } = {
      name,
      port,
      url: `nats://127.0.0.1:${port}`,
      get running() {
        return node.child !== undefined;
      },
      async kill() {
        const child = node.child;
        node.child = undefined;
        if (child) await stopChild(child);
      },
      async start() {
        if (node.child) return;
        node.child = spawnTracked(
          'nats-server',
          [
            '-a',
            '127.0.0.1',
            '-p',
            String(port),
            '-n',
            name,
            '--cluster_name',
            'sidecast-test',
            '--cluster',
            `nats://127.0.0.1:${routePorts[i]}`,
            '--routes',
            routes,
            '--js',
            '--sd',
            join(folder, name),
          ],
          { stdio: 'ignore' },
        );
        await waitFor(() => natsAnswers(node.url), 10_000, `nats-server ${name} on ${port}`, 50);
      },
    };
    return node;
  });
  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((node) => node.url).join(','),
    async stop() {
      await Promise.all(nodes.map((node) => node.kill()));
      rmSync(folder, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((node) => node.start()));
    await waitForJetStream(cluster.urls);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** JetStream answers once the servers have elected a meta leader. */
async function waitForJetStream(urls: string): Promise<void> {
  const connection = await connect({ servers: urls.split(',') });
  try {
    await waitFor(
      async () => {
        try {
          const jsm = await connection.jetstreamManager({ timeout: 1000 });
          await jsm.getAccountInfo();
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      'JetStream to elect a leader',
      200,
    );
  } finally {
    await connection.close();
  }
}

export interface RedisClusterNode {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  kill(): Promise<void>;
  /** SIGSTOP: the node keeps its connections open and answers nothing (a hung master). */
  pause(): void;
  resume(): void;
}

export interface RedisClusterHandle {
  readonly nodes: readonly RedisClusterNode[];
  /** Every node's URL, comma-separated, as --redis-cluster takes them. */
  readonly urls: string;
  /** The nodes that are masters now, by asking a running node. */
  masters(): Promise<RedisClusterNode[]>;
  /** The master that serves the slot of this key or channel now. */
  masterOf(key: string): Promise<RedisClusterNode>;
  /** Waits until every running node sees the cluster as ok (all slots served). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function clusterReply(port: number, ...args: string[]): Promise<string> {
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return String(await redis.call('CLUSTER', ...args));
  } finally {
    redis.disconnect();
  }
}

/** `masters` masters with one replica each, created with `redis-cli --cluster create`. */
export async function createRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const folder = mkdtempSync(join(tmpdir(), 'sidecast-redis-cluster-'));
  const ports = await Promise.all(Array.from({ length: masters * 2 }, () => freePort()));
  const children = new Map<number, ChildProcess>();
  const nodes = ports.map((port): RedisClusterNode => ({
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return children.has(port);
    },
    async kill() {
      const child = children.get(port);
      children.delete(port);
      if (child) await stopChild(child);
    },
    pause() {
      children.get(port)?.kill('SIGSTOP');
    },
    resume() {
      children.get(port)?.kill('SIGCONT');
    },
  }));
  const handle: RedisClusterHandle = {
    nodes,
    urls: nodes.map((node) => node.url).join(','),
    async masters() {
      const alive = nodes.find((node) => node.running);
      if (!alive) return [];
      const text = await clusterReply(alive.port, 'NODES');
      const ports = text
        .split('\n')
        .filter((line) => / master /.test(line) || /,master /.test(line))
        .filter((line) => !/fail/.test(line.split(' ')[2] ?? ''))
        .map((line) => Number(/:(\d+)@/.exec(line)?.[1]));
      return nodes.filter((node) => ports.includes(node.port));
    },
    async masterOf(key) {
      const alive = nodes.find((node) => node.running)!;
      const slot = Number(await clusterReply(alive.port, 'KEYSLOT', key));
      const redis = new Redis({ port: alive.port, host: '127.0.0.1' });
      try {
        const ranges = (await redis.call('CLUSTER', 'SLOTS')) as [
          number,
          number,
          [string, number],
        ][];
        const range = ranges.find(([low, high]) => low <= slot && slot <= high);
        const port = range?.[2][1];
        const node = nodes.find((each) => each.port === port);
        if (!node) throw new Error(`no master serves slot ${slot}`);
        return node;
      } finally {
        redis.disconnect();
      }
    },
    async waitHealthy(timeoutMs = 30_000) {
      await waitFor(
        async () => {
          for (const node of nodes.filter((each) => each.running)) {
            const info = await clusterReply(node.port, 'INFO').catch(() => '');
            if (!info.includes('cluster_state:ok')) return false;
          }
          return true;
        },
        timeoutMs,
        'the Redis Cluster to be ok',
        200,
      );
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.kill()));
      rmSync(folder, { recursive: true, force: true });
    },
  };
  try {
    for (const port of ports) {
      const child = spawnTracked(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(folder, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '1500',
          // A replica of a test's young cluster may not have heard from its master for long;
          // it is to take over whatever that time.
          '--cluster-replica-validity-factor',
          '0',
          '--dir',
          folder,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: ['ignore', 'ignore', 'ignore'] },
      );
      children.set(port, child);
    }
    for (const port of ports) {
      await waitFor(
        async () => (await clusterReply(port, 'INFO').catch(() => '')) !== '',
        10_000,
        `redis-server on ${port}`,
        50,
      );
    }
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (created.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await handle.waitHealthy();
    // Every replica attached: a master killed now has one to promote.
    await waitFor(
      async () => {
        const text = await clusterReply(ports[0]!, 'NODES');
        return text.split('\n').filter((line) => /slave/.test(line)).length === masters;
      },
      20_000,
      'every replica to attach',
      200,
    );
    await sleep(200);
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}
