/**
 * The write batcher on real loopback sockets: frames queued for a socket leave in one write, in
 * order; sockets are written oldest first, a chunk per event-loop turn; a socket destroyed while
 * it waits is skipped; flush() writes everything at once.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createWriteBatcher } from '../../src/server/fanout.js';

interface Pair {
  /** The server side, written through the batcher. */
  readonly socket: Socket;
  /** Everything the peer has read so far. */
  received(): Buffer;
  /** Resolves once the peer has read `bytes` bytes. */
  waitFor(bytes: number): Promise<Buffer>;
}

/** Records every system-level write (_write or _writev) a socket makes, in a shared log. */
function spyOnWrites(socket: Socket, name: string, log: string[]): void {
  type WriteHooks = {
    _write(...args: unknown[]): void;
    _writev(...args: unknown[]): void;
  };
  const hooks = socket as unknown as WriteHooks;
  const write = hooks._write.bind(socket);
  const writev = hooks._writev.bind(socket);
  hooks._write = (...args) => {
    log.push(name);
    write(...args);
  };
  hooks._writev = (...args) => {
    log.push(name);
    writev(...args);
  };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('write batcher', () => {
  let server: Server;
  const accepted: Socket[] = [];
  const peers: Socket[] = [];

  before(async () => {
    server = createServer((socket) => accepted.push(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  after(async () => {
    for (const socket of [...accepted, ...peers]) socket.destroy();
    server.close();
  });

  async function pairs(count: number): Promise<Pair[]> {
    const out: Pair[] = [];
    for (let i = 0; i < count; i++) {
      const before = accepted.length;
      const { port } = server.address() as { port: number };
      const peer = connect({ host: '127.0.0.1', port });
      peers.push(peer);
      const chunks: Buffer[] = [];
      const waiters: (() => void)[] = [];
      peer.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        for (const wake of waiters.splice(0)) wake();
      });
      await once(peer, 'connect');
      while (accepted.length === before) await new Promise((resolve) => setTimeout(resolve, 5));
      const received = () => Buffer.concat(chunks);
      out.push({
        socket: accepted[accepted.length - 1]!,
        received,
        async waitFor(bytes) {
          const deadline = Date.now() + 5000;
          while (received().length < bytes) {
            if (Date.now() > deadline) throw new Error(`peer got ${received().length}/${bytes}`);
            await new Promise<void>((resolve) => {
              waiters.push(resolve);
              setTimeout(resolve, 50);
            });
          }
          return received();
        },
      });
    }
    return out;
  }

  it('sends every frame queued for a socket in one write, in order, after the turn', async () => {
    const [pair] = await pairs(1);
    const log: string[] = [];
    spyOnWrites(pair!.socket, 'a', log);
    const batcher = createWriteBatcher();
    const frames = Array.from({ length: 50 }, (_, i) => Buffer.from(`frame ${i};`));
    for (const frame of frames) batcher.write(pair!.socket, frame);
    assert.deepEqual(log, [], 'nothing is written before the turn ends');
    assert.equal(batcher.queued, 1);
    await nextTurn();
    assert.deepEqual(log, ['a'], 'one write for fifty frames');
    const expected = Buffer.concat(frames);
    assert.ok((await pair!.waitFor(expected.length)).equals(expected));
    assert.equal(batcher.queued, 0);
  });

  it('writes sockets oldest first, a chunk per turn, and lets late frames join a queued socket', async () => {
    const all = await pairs(5);
    const log: string[] = [];
    all.forEach((pair, i) => spyOnWrites(pair.socket, `s${i}`, log));
    const batcher = createWriteBatcher({ socketsPerTurn: 2 });
    for (const pair of all) batcher.write(pair.socket, Buffer.from('A'));
    await nextTurn();
    assert.deepEqual(log, ['s0', 's1'], 'the first turn writes the two oldest');
    // s2 is still queued: B joins its pending write. s0 was written: it queues again, last.
    batcher.write(all[2]!.socket, Buffer.from('B'));
    batcher.write(all[0]!.socket, Buffer.from('B'));
    for (let turn = 0; turn < 4 && batcher.queued > 0; turn++) await nextTurn();
    assert.deepEqual(log, ['s0', 's1', 's2', 's3', 's4', 's0']);
    assert.equal((await all[2]!.waitFor(2)).toString(), 'AB');
    assert.equal((await all[0]!.waitFor(2)).toString(), 'AB');
    assert.equal((await all[4]!.waitFor(1)).toString(), 'A');
  });

  it('skips a socket destroyed while it waits and still writes the others', async () => {
    const all = await pairs(3);
    const log: string[] = [];
    all.forEach((pair, i) => spyOnWrites(pair.socket, `s${i}`, log));
    const errors: unknown[] = [];
    for (const pair of all) pair.socket.on('error', (error) => errors.push(error));
    const batcher = createWriteBatcher();
    for (const pair of all) batcher.write(pair.socket, Buffer.from('x'));
    all[1]!.socket.destroy();
    await nextTurn();
    assert.deepEqual(log, ['s0', 's2']);
    assert.equal((await all[2]!.waitFor(1)).toString(), 'x');
    await nextTurn();
    assert.deepEqual(errors, []);
  });

  it('keeps writing the others when a peer resets its connection mid-write', async () => {
    const all = await pairs(3);
    const errors: unknown[] = [];
    for (const pair of all) pair.socket.on('error', (error) => errors.push(error));
    const batcher = createWriteBatcher();
    // The peer of the middle socket resets; the server side learns it only when it writes.
    const gone = peers[peers.length - 2]!;
    gone.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let round = 0; round < 3; round++) {
      for (const pair of all) batcher.write(pair.socket, Buffer.from(`${round}`));
      await nextTurn();
    }
    assert.equal((await all[0]!.waitFor(3)).toString(), '012');
    assert.equal((await all[2]!.waitFor(3)).toString(), '012');
    assert.equal(batcher.queued, 0);
    assert.ok(errors.length <= 1, 'at most the reset socket reports an error');
  });

  it('flush() writes every queued socket at once', async () => {
    const all = await pairs(3);
    const log: string[] = [];
    all.forEach((pair, i) => spyOnWrites(pair.socket, `s${i}`, log));
    const batcher = createWriteBatcher({ socketsPerTurn: 1 });
    for (const pair of all) batcher.write(pair.socket, Buffer.from('z'));
    batcher.flush();
    assert.deepEqual(log, ['s0', 's1', 's2']);
    assert.equal(batcher.queued, 0);
    await nextTurn();
    assert.deepEqual(log, ['s0', 's1', 's2'], 'nothing left for the scheduled turn');
  });
});
