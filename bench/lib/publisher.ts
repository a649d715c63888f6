/**
 * The Django side of the benchmark: events published on the run's Redis channel, shaped like the
 * guide's LogEntry events (about 300 bytes), carrying their intended publish time so that the
 * clients can measure publish-to-receive latency on the machine's monotonic clock.
 */
import { Redis } from 'ioredis';
import { MODEL_COUNT, seededRandom } from './population.js';

export class Publisher {
  readonly #redis: Redis;
  readonly #channel: string;
  readonly #modelIds: readonly number[];
  readonly #probeIds: readonly number[];
  readonly #random = seededRandom(7);
  readonly #stream: { readonly name: string; readonly maxLen: number } | undefined;
  #seq = 0;

  /**
   * With `stream`, every event is also added to that Redis stream (XADD MAXLEN ~, one `payload`
   * field, as Django does for the redis-streams bus), so that servers on either bus see it.
   */
  constructor(
    redisUrl: string,
    channel: string,
    modelIds: readonly number[],
    probeIds: readonly number[],
    stream?: { readonly name: string; readonly maxLen: number },
  ) {
    this.#redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    this.#channel = channel;
    this.#stream = stream;
    this.#modelIds = modelIds;
    this.#probeIds = probeIds;
  }

  /** Publishes one event for a bench model chosen evenly at random; returns the model index. */
  event(intendedMicros: number): number {
    const model = Math.floor(this.#random() * MODEL_COUNT);
    const seq = ++this.#seq;
    const name = `model${String(model + 1).padStart(2, '0')}`;
    const objectId = 1000 + (seq % 9000);
    // bench_t comes first so that clients find it at once; the rest mirrors the guide's event.
    const payload =
      `{"bench_t": ${Math.round(intendedMicros)}, "bench_seq": ${seq}, "model": "${name}", ` +
      `"object": "${name} object (${objectId})", ` +
      `"message": "[{\\"changed\\": {\\"fields\\": [\\"Title\\", \\"Status\\"]}}]", ` +
      `"timestamp": "${new Date().toISOString().replace('Z', '+00:00')}", ` +
      `"user": "editor${String(seq % 100).padStart(3, '0')}", ` +
      `"content_type_id": ${this.#modelIds[model]}, "object_id": "${objectId}"}`;
    this.#send(payload);
    return model;
  }

  /** An event for one probe shard; the first one a client receives shows it is live. */
  probe(shard: number, n: number): void {
    const id = this.#probeIds[shard]!;
    this.#send(`{"bench_probe": ${n}, "model": "probe", "content_type_id": ${id}}`);
  }

  /** Sequence number (bench_seq) of the last event published. */
  get seq(): number {
    return this.#seq;
  }

  #send(payload: string): void {
    this.#redis.publish(this.#channel, payload).catch(() => undefined);
    if (this.#stream)
      this.#redis
        .call(
          'XADD',
          this.#stream.name,
          'MAXLEN',
          '~',
          this.#stream.maxLen,
          '*',
          'payload',
          payload,
        )
        .catch(() => undefined);
  }

  /** Resolves once Redis has answered every publish sent so far. */
  async flush(): Promise<void> {
    await this.#redis.ping();
  }

  close(): void {
    this.#redis.disconnect();
  }
}
