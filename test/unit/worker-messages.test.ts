/**
 * The one guard over what crosses between the primary and its workers: each kind well formed,
 * in its direction, and nothing else (another library's messages share the channel).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isClusterMessage,
  MessageKind,
  type ToPrimary,
  type ToWorker,
} from '../../src/workers/messages.js';

const TO_PRIMARY: ToPrimary[] = [
  { kind: MessageKind.Listening, url: 'ws://127.0.0.1:8888/' },
  { kind: MessageKind.Failed, text: 'sidecast: cannot reach Redis', exitCode: 1 },
  { kind: MessageKind.Publish, id: 3, topic: 'events', payload: '{"content_type_id": 1}' },
  { kind: MessageKind.Publish, id: 5, topic: 'control', payload: '{"type": "all"}' },
  { kind: MessageKind.Scrape, id: 4 },
];
const TO_WORKER: ToWorker[] = [
  { kind: MessageKind.Stop },
  { kind: MessageKind.Event, topic: 'events', payload: '{"content_type_id": 1}' },
  { kind: MessageKind.Event, topic: 'control', payload: '{"type": "all"}' },
  { kind: MessageKind.Ack, id: 3 },
  { kind: MessageKind.Metrics, id: 4, text: '# HELP ...' },
  { kind: MessageKind.Metrics, id: 4, error: 'timed out' },
];

describe('messages between the primary and its workers', () => {
  it('accepts every kind, in its own direction only', () => {
    for (const message of TO_PRIMARY) {
      assert.ok(isClusterMessage(message), message.kind);
      assert.ok(isClusterMessage(message, 'primary'), message.kind);
      assert.ok(!isClusterMessage(message, 'worker'), message.kind);
    }
    for (const message of TO_WORKER) {
      assert.ok(isClusterMessage(message), message.kind);
      assert.ok(isClusterMessage(message, 'worker'), message.kind);
      assert.ok(!isClusterMessage(message, 'primary'), message.kind);
    }
  });

  it('refuses malformed messages and those of anyone else', () => {
    const others: unknown[] = [
      undefined,
      null,
      'sidecast:stop',
      42,
      {},
      { kind: 'sidecast:unknown' },
      { kind: 'constructor' },
      { kind: 'toString', id: 1 },
      { kind: MessageKind.Listening },
      { kind: MessageKind.Failed, text: 'x' },
      { kind: MessageKind.Publish, id: '3', payload: '{}' },
      { kind: MessageKind.Event, payload: Buffer.from('{}') },
      { kind: MessageKind.Ack },
      { kind: MessageKind.Metrics, id: 4 },
      // prom-client's own aggregation messages travel on the same channel.
      { type: 'prom-client:getMetricsReq', requestId: 1 },
      // Node's cluster internals.
      { cmd: 'NODE_CLUSTER', act: 'online' },
    ];
    for (const message of others) assert.ok(!isClusterMessage(message), JSON.stringify(message));
  });
});
