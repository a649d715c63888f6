/** The set drain waits on: it resolves when the last connection goes, or when time is up. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenConnections } from '../../src/server/open-connections.js';

describe('open connections', () => {
  it('resolves at once when nothing is open', async () => {
    await new OpenConnections<string>().whenEmpty(60_000);
  });

  it('wakes every waiter when the last connection goes, not before', async () => {
    const open = new OpenConnections<string>();
    open.add('a');
    open.add('b');
    let woken = 0;
    const waiters = [open.whenEmpty(60_000), open.whenEmpty(60_000)].map((p) =>
      p.then(() => woken++),
    );
    open.delete('a');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(woken, 0, 'one connection is still open');
    open.delete('b');
    await Promise.all(waiters);
    assert.equal(woken, 2);
    assert.deepEqual([...open], []);
  });

  it('gives up waiting after the timeout', async () => {
    const open = new OpenConnections<string>();
    open.add('stuck');
    const started = Date.now();
    await open.whenEmpty(50);
    assert.ok(Date.now() - started >= 45);
    assert.equal(open.size, 1);
  });
});
