import { request } from 'node:http';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

/**
 * What a test can see of a running server from outside: HTTP answers and log lines. (Its metrics
 * are read with test/support/metrics.ts.)
 */

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export interface HttpRequest {
  readonly method?: string;
  readonly path: string;
  /** Sent as given: nothing is added, so a test controls every header (fetch adds some). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent with Transfer-Encoding: chunked unless the headers give a Content-Length. */
  readonly body?: string | Buffer;
  /** How long the connection may stay silent before the request fails. */
  readonly timeoutMs?: number;
}

/** One HTTP request on a fresh connection to 127.0.0.1:`port`; resolves with the whole answer. */
export function httpRequest(port: number, options: HttpRequest): Promise<HttpAnswer> {
  const { method = 'GET', path, headers = {}, body, timeoutMs = 5000 } = options;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
      );
    });
    req.end(body);
  });
}

/** One plain HTTP GET on a fresh connection. */
export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<HttpAnswer> {
  return httpRequest(port, { path, timeoutMs });
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
