import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnTracked, stopChild } from './children.js';
import { freePort } from './ports.js';

/**
 * Services a test can break on purpose: a Redis server of its own, and a TCP proxy in front of
 * a database that can be cut or made to hang.
 */

async function answers(port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    socket.write('PING\r\n');
    const [reply] = (await once(socket, 'data')) as [Buffer];
    return reply.toString().startsWith('+PONG');
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/**
 * A redis-server process on its own port, that can be stopped and started again on that port.
 * Without persistence (the default) it starts empty each time; with `appendOnlyDir` it writes an
 * append-only file there, fsynced at every write, and a restart finds every key again. It is
 * tracked (./children.ts): if a test fails before stop(), it dies with the test process.
 */
export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT/0 */
  readonly url: string;
  /** The running redis-server's pid; undefined while stopped. */
  readonly pid: number | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing is answered (a hung server). */
  pause(): void;
  /** SIGCONT: what arrived meanwhile is processed. */
  resume(): void;
}

export interface RedisServerOptions {
  /** A folder of the test's own for the append-only file (redis-server --dir). */
  readonly appendOnlyDir?: string;
}

export async function createRedisServer(
  port?: number,
  options: RedisServerOptions = {},
): Promise<RedisServer> {
  const chosen = port ?? (await freePort());
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}/0`,
    get pid() {
      return child?.pid;
    },
    async start() {
      if (child) return;
      const args = ['--port', String(chosen), '--bind', '127.0.0.1', '--save', ''];
      const persistence = options.appendOnlyDir
        ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', options.appendOnlyDir]
        : ['--appendonly', 'no'];
      child = spawnTracked('redis-server', [...args, ...persistence], { stdio: 'ignore' });
      const spawned = child;
      const failed = new Promise<never>((_, reject) => {
        spawned.once('error', (error) => reject(new Error(`cannot run redis-server: ${error}`)));
        spawned.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
      });
      failed.catch(() => undefined);
      try {
        const deadline = Date.now() + 10_000;
        while (!(await Promise.race([answers(chosen), failed]))) {
          if (Date.now() > deadline) throw new Error(`redis-server on ${chosen} did not start`);
          await sleep(50);
        }
      } catch (error) {
        await server.stop();
        throw error;
      }
    },
    pause() {
      if (!child?.kill('SIGSTOP')) throw new Error('redis-server is not running');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async stop() {
      const running = child;
      if (!running) return;
      child = undefined;
      await stopChild(running);
    },
  };
  return server;
}

export type ProxyMode = 'forward' | 'refuse' | 'hang';

/**
 * A TCP proxy to 127.0.0.1:targetPort. `cut()` resets every connection and refuses new ones
 * (a database that went away); `hang()` keeps connections open but moves no bytes (a database
 * that stopped answering); `restore()` forwards again.
 */
export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  cut(): Promise<void>;
  hang(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function createTcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const pairs = new Set<[Socket, Socket]>();
  // Connections accepted while hanging: held, unread, until restore() or cut().
  const held = new Set<Socket>();
  let mode: ProxyMode = 'forward';
  let server: Server | undefined;

  function forward(client: Socket): void {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      upstream.destroy();
      pairs.delete(pair);
    });
    upstream.on('close', () => {
      client.destroy();
      pairs.delete(pair);
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  function onConnection(client: Socket): void {
    client.on('error', () => client.destroy());
    if (mode === 'hang') {
      client.pause();
      held.add(client);
      client.on('close', () => held.delete(client));
      return;
    }
    forward(client);
  }

  async function listen(): Promise<void> {
    server = createServer(onConnection);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  }

  async function stopListening(): Promise<void> {
    const current = server;
    server = undefined;
    if (!current) return;
    const closed = once(current, 'close');
    current.close();
    await closed;
  }

  function destroyAll(reset: boolean): void {
    for (const socket of [...held, ...[...pairs].flat()]) {
      if (reset && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
    }
    held.clear();
    pairs.clear();
  }

  await listen();
  return {
    port,
    get mode() {
      return mode;
    },
    async cut() {
      mode = 'refuse';
      // A reset, as a crashed server or a firewall would send.
      destroyAll(true);
      await stopListening();
    },
    hang() {
      mode = 'hang';
      // Unread bytes stay in the kernel, so the streams are intact when restored.
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    async restore() {
      const wasHanging = mode === 'hang';
      mode = 'forward';
      if (!server) await listen();
      if (!wasHanging) return;
      for (const [client, upstream] of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
      for (const client of held) forward(client);
      held.clear();
    },
    async close() {
      destroyAll(false);
      await stopListening();
    },
  };
}
