/**
 * The memory bus across workers, from a worker's side: the test process is the primary of a
 * forked stand-in worker (test/support/cluster-bus-child.ts) and decides when, or whether, to
 * relay and acknowledge.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MessageKind } from '../../src/workers/messages.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(REPO_ROOT, 'test', 'support', 'cluster-bus-child.ts');

interface Worker {
  readonly child: ChildProcess;
  /** What the worker printed, parsed. */
  readonly lines: Record<string, unknown>[];
  /** What the worker sent to its primary (this process). */
  readonly requests: Record<string, unknown>[];
  waitFor(test: (line: Record<string, unknown>) => boolean, ms?: number): Promise<void>;
}

function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolvePromise, reject) => {
    const check = () => {
      if (condition()) resolvePromise();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 10);
    };
    check();
  });
}

describe('cluster memory bus (worker side)', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const child of started.splice(0)) child.kill('SIGKILL');
  });

  async function startWorker(ackTimeoutMs: number): Promise<Worker> {
    const child = fork(CHILD, [], {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ACK_TIMEOUT_MS: String(ackTimeoutMs) },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    started.push(child);
    const lines: Record<string, unknown>[] = [];
    const requests: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) =>
      lines.push(JSON.parse(line) as Record<string, unknown>),
    );
    child.on('message', (message) => requests.push(message as Record<string, unknown>));
    const worker: Worker = {
      child,
      lines,
      requests,
      waitFor: (test, ms = 5000) => until(() => lines.some(test), ms, 'a line from the worker'),
    };
    await worker.waitFor((line) => line.ready === true, 20_000);
    return worker;
  }

  it('resolves a publish only once the primary acknowledges it, after relaying it', async () => {
    const worker = await startWorker(5000);
    worker.child.send({ publish: 'first' });
    await until(() => worker.requests.length === 1, 5000, 'the publish request');
    const [request] = worker.requests;
    assert.equal(request!.kind, MessageKind.Publish);
    assert.equal(request!.topic, 'events');
    assert.equal(request!.payload, 'first');
    assert.equal(typeof request!.id, 'number');
    // Nothing is delivered locally, and the publish waits.
    await new Promise((wake) => setTimeout(wake, 300));
    assert.deepEqual(worker.lines.slice(1), []);
    worker.child.send({ kind: MessageKind.Event, topic: 'events', payload: 'first' });
    worker.child.send({ kind: MessageKind.Ack, id: request!.id });
    await worker.waitFor((line) => line.published === 'first');
    assert.deepEqual(worker.lines.slice(1), [{ delivered: 'first' }, { published: 'first' }]);
    // An acknowledgement for another request settles nothing.
    worker.child.send({ publish: 'second' });
    await until(() => worker.requests.length === 2, 5000, 'the second request');
    worker.child.send({ kind: MessageKind.Ack, id: Number(request!.id) + 100 });
    await new Promise((wake) => setTimeout(wake, 200));
    assert.equal(worker.lines.length, 3);
    worker.child.send({ kind: MessageKind.Ack, id: worker.requests[1]!.id });
    await worker.waitFor((line) => line.published === 'second');
  });

  it('relays control messages on their own topic, to the control handler only', async () => {
    const worker = await startWorker(5000);
    worker.child.send({ control: '{"type":"all"}' });
    await until(() => worker.requests.length === 1, 5000, 'the control request');
    const [request] = worker.requests;
    assert.equal(request!.kind, MessageKind.Publish);
    assert.equal(request!.topic, 'control');
    worker.child.send({ kind: MessageKind.Event, topic: 'control', payload: '{"type":"all"}' });
    worker.child.send({ kind: MessageKind.Ack, id: request!.id });
    await worker.waitFor((line) => line.sent === '{"type":"all"}');
    assert.deepEqual(worker.lines.slice(1), [
      { controlled: '{"type":"all"}' },
      { sent: '{"type":"all"}' },
    ]);
  });

  it('fails with BUS_UNAVAILABLE (503) when the primary does not answer in time', async () => {
    const worker = await startWorker(300);
    const sent = Date.now();
    worker.child.send({ publish: 'unanswered' });
    await worker.waitFor((line) => line.failed === 'unanswered', 5000);
    const elapsed = Date.now() - sent;
    assert.ok(elapsed >= 250 && elapsed < 3000, `failed after ${elapsed} ms`);
    assert.deepEqual(worker.lines.at(-1), {
      failed: 'unanswered',
      code: 'BUS_UNAVAILABLE',
      status: 503,
      message:
        'cannot publish to the memory bus across workers: no answer from the primary within 300 ms',
    });
  });

  it('fails waiting and new publishes with BUS_UNAVAILABLE (503) once the primary is gone', async () => {
    const worker = await startWorker(60_000);
    worker.child.send({ publish: 'in flight' });
    await until(() => worker.requests.length === 1, 5000, 'the publish request');
    worker.child.disconnect();
    await worker.waitFor((line) => line.failed === 'after the primary', 5000);
    const gone = {
      code: 'BUS_UNAVAILABLE',
      status: 503,
      message: 'cannot publish to the memory bus across workers: the primary process is gone',
    };
    assert.deepEqual(worker.lines.slice(1), [
      { failed: 'in flight', ...gone },
      { failed: 'after the primary', ...gone },
    ]);
  });
});
