import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLimiter } from '../../src/server/limiter.js';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('limiter', () => {
  it('runs at most `concurrency` tasks at once, the rest in arrival order', async () => {
    const limiter = createLimiter(2);
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((gate, index) =>
      limiter.run(async () => {
        started.push(index);
        await gate.promise;
        return index;
      }),
    );
    await tick();
    assert.deepEqual(started, [0, 1]);
    assert.equal(limiter.active, 2);
    assert.equal(limiter.waiting, 2);
    gates[1]!.resolve();
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    gates[0]!.resolve();
    gates[2]!.resolve();
    gates[3]!.resolve();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
    assert.equal(limiter.active, 0);
  });

  it('frees the slot when a task fails', async () => {
    const limiter = createLimiter(1);
    await assert.rejects(
      limiter.run(() => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(await limiter.run(async () => 'next'), 'next');
    assert.equal(limiter.active, 0);
  });

  it('drops a waiting task whose signal aborts, without running it', async () => {
    const limiter = createLimiter(1);
    const gate = deferred();
    const first = limiter.run(() => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const second = limiter.run(async () => {
      ran = true;
    }, controller.signal);
    const third = limiter.run(async () => 'third');
    await tick();
    controller.abort(new Error('client left'));
    await assert.rejects(second, /client left/);
    assert.equal(limiter.waiting, 1);
    gate.resolve();
    await first;
    assert.equal(await third, 'third');
    assert.equal(ran, false);
  });

  it('abandons a running task whose signal aborts and gives its slot to the next one', async () => {
    const limiter = createLimiter(1);
    const hung = deferred<string>();
    const controller = new AbortController();
    const stuck = limiter.run(() => hung.promise, controller.signal);
    const next = limiter.run(async () => 'next');
    await tick();
    assert.equal(limiter.waiting, 1);
    controller.abort(new Error('took too long'));
    await assert.rejects(stuck, /took too long/);
    assert.equal(await next, 'next');
    // The abandoned work finishing late changes nothing.
    hung.resolve('late');
    await tick();
    assert.equal(limiter.active, 0);
    assert.equal(limiter.waiting, 0);
  });

  it('refuses at once a task whose signal has already aborted', async () => {
    const limiter = createLimiter(1);
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    let ran = false;
    await assert.rejects(
      limiter.run(async () => {
        ran = true;
      }, controller.signal),
      /gone/,
    );
    assert.equal(ran, false);
    assert.equal(limiter.active, 0);
  });
});
