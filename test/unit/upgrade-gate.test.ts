/**
 * Upgrade gating without a server: which upgrades go ahead, and the exact answer a refused or
 * malformed one gets (status line from Node's table, headers, body), with the socket closed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, createLogLimiter } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { MAX_ORIGIN_LENGTH } from '../../src/server/origin.js';
import { createUpgradeGate } from '../../src/server/upgrade.js';

function setup(state: { draining?: boolean; open?: number } = {}) {
  const metrics = createMetrics();
  const logger = createLogger('silent');
  const gate = createUpgradeGate(
    { allowedOrigins: ['https://app.test'], maxConnections: 2 },
    {
      metrics,
      logger,
      refusalLog: createLogLimiter(logger),
      draining: () => state.draining ?? false,
      openConnections: () => state.open ?? 0,
    },
  );
  return { gate, metrics };
}

function request(method: string, headers: Record<string, string> = {}): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage;
}

/** A socket that records what is written to it. */
function socket() {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return {
    stream,
    /** What was written, once the socket has been closed. */
    async answer(): Promise<string> {
      if (!stream.destroyed) await once(stream, 'close');
      return Buffer.concat(chunks).toString('latin1');
    },
  };
}

async function refused(state: { draining?: boolean; open?: number }, origin?: string) {
  const { gate, metrics } = setup(state);
  const client = socket();
  const admitted = gate.admit(request('GET', origin ? { origin } : {}), client.stream);
  return { admitted, text: admitted ? '' : await client.answer(), metrics };
}

describe('upgrade gate', () => {
  it('admits an allowed origin, or none, while there is room', async () => {
    assert.equal((await refused({ open: 1 }, 'https://app.test')).admitted, true);
    assert.equal((await refused({ open: 1 })).admitted, true);
  });

  it('refuses while draining and when full with 503 and Retry-After', async () => {
    for (const [state, reason] of [
      [{ draining: true }, 'draining'],
      [{ open: 2 }, 'max connections'],
    ] as const) {
      const { admitted, text } = await refused(state);
      assert.equal(admitted, false);
      const body = `sidecast: ${reason}\n`;
      assert.equal(
        text,
        'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n' +
          `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
    }
  });

  it('refuses other origins, and overlong ones unread, with 403', async () => {
    const evil = await refused({}, 'https://evil.test');
    assert.match(evil.text, /^HTTP\/1\.1 403 Forbidden\r\n[^]*\r\n\r\nsidecast: origin\n$/);
    const long = await refused({}, `https://${'a'.repeat(MAX_ORIGIN_LENGTH)}.test`);
    assert.match(long.text, /\r\n\r\nsidecast: origin too long\n$/);
    assert.doesNotMatch(long.text, /Retry-After/);
  });

  it('answers malformed handshakes as ws does, counted as bad_handshake', async () => {
    const { gate, metrics } = setup();
    const post = socket();
    gate.refuseMalformed(new Error('Invalid HTTP method'), post.stream, request('POST'));
    const postText = await post.answer();
    assert.match(postText, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.doesNotMatch(postText, /Sec-WebSocket-Version/);
    assert.match(postText, /\r\n\r\nInvalid HTTP method$/);

    const version = socket();
    const message = 'Missing or invalid Sec-WebSocket-Version header';
    const headers = { 'sec-websocket-version': '12' };
    gate.refuseMalformed(new Error(message), version.stream, request('GET', headers));
    const versionText = await version.answer();
    assert.match(versionText, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(versionText, /\r\nSec-WebSocket-Version: 13, 8\r\n/);
    assert.match(versionText, new RegExp(`Content-Length: ${message.length}\r\n\r\n${message}$`));

    const key = socket();
    const good = { 'sec-websocket-version': '13' };
    gate.refuseMalformed(
      new Error('Missing or invalid Sec-WebSocket-Key header'),
      key.stream,
      request('GET', good),
    );
    assert.doesNotMatch(await key.answer(), /Sec-WebSocket-Version/);

    const counted = await metrics.registry.getSingleMetricAsString(
      'sidecast_connections_refused_total',
    );
    assert.match(counted, /reason="bad_handshake"\} 3/);
  });
});
