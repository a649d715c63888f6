import { request } from 'node:http';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

/** What a test can see of a running server from outside: HTTP answers, metrics, log lines. */

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One plain HTTP GET on a fresh connection. */
export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.end();
  });
}

/**
 * Reads GET /metrics the way Prometheus would and returns each sample by its full name, labels
 * included as written: `sidecast_authentications_total{outcome="timeout"}`.
 */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const answer = await httpGet(port, '/metrics');
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
export async function metric(port: number, sample: string): Promise<number> {
  return (await scrapeMetrics(port)).get(sample) ?? 0;
}

/**
 * A sample once it equals `expected`, or its last value after `timeoutMs`. /metrics answers
 * from a collection up to a second old, so a value read soon after an earlier scrape of the
 * same server may not show what happened in between yet.
 */
export async function metricReaches(
  port: number,
  sample: string,
  expected: number,
  timeoutMs = 3000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await metric(port, sample);
    if (value === expected || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface CapturedLogs {
  readonly logger: Logger;
  /** Every JSON line written so far. */
  readonly lines: string[];
  /** The lines parsed, for matching on fields. */
  entries(): Record<string, unknown>[];
}

/** A debug-level logger writing into memory instead of stderr. */
export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      done();
    },
  });
  return {
    logger: createLogger('debug', 'sidecast', stream),
    lines,
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
