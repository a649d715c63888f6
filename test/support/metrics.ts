/**
 * A server's GET /metrics as the tests read it: Prometheus text format parsed into samples named
 * as written, labels included: `sidecast_authentications_total{outcome="timeout"}`.
 */
import { httpGet } from './observe.js';

/**
 * Where the server under test listens: its port, or its ws:// (or http://) URL as `app.url` and
 * `spawnServe` report it. Every such server listens on 127.0.0.1.
 */
export type MetricsTarget = number | string;

function portOf(target: MetricsTarget): number {
  return typeof target === 'number' ? target : Number(new URL(target).port);
}

/** Reads GET /metrics the way Prometheus would and returns each sample by its full name. */
export async function scrapeMetrics(target: MetricsTarget): Promise<Map<string, number>> {
  const answer = await httpGet(portOf(target), '/metrics');
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
  const samples = new Map<string, number>();
  for (const line of answer.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** A sample's value, 0 when absent (a labelled counter appears only once incremented). */
export async function metric(target: MetricsTarget, sample: string): Promise<number> {
  return (await scrapeMetrics(target)).get(sample) ?? 0;
}

/**
 * A sample once it equals `expected`, or its last value after `timeoutMs`. /metrics answers
 * from a collection up to a second old, so a value read soon after an earlier scrape of the
 * same server may not show what happened in between yet.
 */
export async function metricReaches(
  target: MetricsTarget,
  sample: string,
  expected: number,
  timeoutMs = 3000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await metric(target, sample);
    if (value === expected || Date.now() > deadline) return value;
    await new Promise((wake) => setTimeout(wake, 100));
  }
}

interface CounterLike {
  get(): Promise<{ values: { value: number; labels: Partial<Record<string, string | number>> }[] }>;
}

/**
 * A counter of a server in this process (`app.metrics.…`), read at once rather than through
 * /metrics and its collection up to a second old, summed over the samples matching `labels`.
 */
export async function counted(
  counter: CounterLike,
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await counter.get();
  return values
    .filter((sample) =>
      Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}
