/**
 * A request that trickles its headers is cut off with 408 close to --auth-timeout, as documented:
 * Node only looks for late headers at its connections-checking interval, which used to add up to
 * half the timeout again (up to 5 s on the default 10 s).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sidecast } from '../../src/app.js';
import { httpGet } from '../support/observe.js';
import { startTestServer, tableAuthenticator } from '../support/server.js';

/** Opens a socket that sends one more header line every 200 ms; resolves when it is closed. */
async function trickle(port: number): Promise<{ ms: number; answer: string }> {
  const started = performance.now();
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  let line = 0;
  const timer = setInterval(() => socket.write(`X-Slow-${line++}: still sending\r\n`), 200);
  // Never long: a server that keeps the socket past this fails the test below anyway.
  const giveUp = setTimeout(() => socket.destroy(), 10_000);
  await once(socket, 'close');
  clearInterval(timer);
  clearTimeout(giveUp);
  return { ms: performance.now() - started, answer };
}

describe('slow request headers', () => {
  let app: Sidecast;
  before(async () => {
    app = await startTestServer(['--auth-timeout', '2'], { authenticator: tableAuthenticator({}) });
  });
  after(() => app.close());

  it('answers 408 between --auth-timeout and a tenth of it later', async (t) => {
    // Five sockets a fifth of a second apart: whatever the phase of Node's check, one of them
    // starts just after a check and waits for the whole interval.
    const results = await Promise.all(
      [0, 1, 2, 3, 4].map(async (i) => {
        await sleep(i * 200);
        return trickle(app.port);
      }),
    );
    const times = results.map((result) => Math.round(result.ms));
    t.diagnostic(`cut off after ${times.join(', ')} ms`);
    for (const { answer } of results) assert.match(answer, /^HTTP\/1\.1 408 /);
    // 2 s, plus 200 ms of checking interval, plus room for a busy test machine.
    for (const ms of times) assert.ok(ms >= 1950 && ms < 2600, `cut off after ${ms} ms`);
    assert.equal((await httpGet(app.port, '/healthz')).status, 200);
  });
});
