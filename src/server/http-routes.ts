import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PublishError, publishEvents } from '../bus/publish.js';
import { assertPublishable } from '../event.js';
import { headersOf, isSidecastError, SidecastError, statusOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { checkBearer, MAX_AUTHORIZATION_LENGTH, type BearerVerdict } from './bearer.js';

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, string>>;
}

export interface RouteContext {
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly readiness: () => Promise<Readiness>;
  /** Set when POST /publish is enabled (SIDECAST_PUBLISH_KEY). */
  readonly publishKey: string;
  /** When set (SIDECAST_METRICS_KEY), GET /metrics requires it. */
  readonly metricsKey: string;
  /** --max-event-bytes: the largest event POST /publish takes. */
  readonly maxEventBytes: number;
  /**
   * Puts one event on the bus, failing as the bus's publish() does: naming the bus. POST /publish
   * sends its events through publishEvents() (src/bus/publish.ts).
   */
  readonly publish: (payload: string) => Promise<void>;
  /** Serves extra pages (the demo); returns false when it does not own the path. */
  readonly page?: (request: IncomingMessage, response: ServerResponse) => boolean;
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

const BEARER_REFUSALS: Readonly<Record<Exclude<BearerVerdict, 'ok'>, (what: string) => string>> = {
  missing: () => 'missing "Authorization: Bearer KEY" header',
  wrong: (what) => `wrong ${what} key`,
  too_long: () => `Authorization header longer than ${MAX_AUTHORIZATION_LENGTH} bytes`,
};

/** Throws unless the request carries the key. */
function requireKey(request: IncomingMessage, key: string, what: 'publish' | 'metrics'): void {
  const verdict = checkBearer(request.headers.authorization, key);
  if (verdict === 'ok') return;
  throw new SidecastError(
    what === 'publish' ? 'PUBLISH_UNAUTHORIZED' : 'METRICS_UNAUTHORIZED',
    BEARER_REFUSALS[verdict](what),
  );
}

/**
 * The batch limit: a request body (one event or a JSON array of them) may hold four events of the
 * largest size, and at least 1 MiB so that batches of small events fit when --max-event-bytes is
 * small. The whole body is held and parsed at once, so it is bounded too.
 */
function maxBodyBytes(maxEventBytes: number): number {
  return Math.max(1024 * 1024, 4 * maxEventBytes);
}

async function readBody(request: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  // Decoding would silently turn bad bytes into U+FFFD, so subscribers would get other bytes.
  if (!isUtf8(body)) throw new SidecastError('EVENT_INVALID', 'body is not UTF-8');
  return body.toString('utf8');
}

function tooLarge(maxBytes: number): SidecastError {
  return new SidecastError('BODY_TOO_LARGE', `request body is larger than ${maxBytes} bytes`);
}

/**
 * The text of each element of a JSON array that JSON.parse already accepted, exactly as sent:
 * re-serializing would change an event's bytes (escapes, spacing, numbers beyond 2^53).
 */
function arrayElements(body: string): string[] {
  const elements: string[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < body.length; i++) {
    const char = body[i]!;
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '[' || char === '{') {
      if (depth++ === 0) start = i + 1;
    } else if (char === ']' || char === '}') {
      if (--depth === 0) elements.push(body.slice(start, i));
    } else if (char === ',' && depth === 1) {
      elements.push(body.slice(start, i));
      start = i + 1;
    }
  }
  const trimmed = elements.map((element) => element.trim());
  return trimmed.length === 1 && trimmed[0] === '' ? [] : trimmed;
}

/**
 * Splits a request body into event payloads. A JSON object is one event and an array one event per
 * element; either way each payload is forwarded with the bytes the publisher sent.
 */
function payloadsOf(body: string, maxEventBytes: number): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new SidecastError('EVENT_INVALID', 'body is not valid JSON');
  }
  if (!Array.isArray(parsed)) {
    assertPublishable(body, maxEventBytes);
    return [body];
  }
  const payloads = arrayElements(body);
  if (payloads.length === 0)
    throw new SidecastError('EVENT_INVALID', 'empty array: no events to publish');
  payloads.forEach((payload, index) => {
    try {
      assertPublishable(payload, maxEventBytes);
    } catch (error) {
      if (!isSidecastError(error)) throw error;
      throw new SidecastError(error.kind, `event ${index}: ${error.message}`, { cause: error });
    }
  });
  return payloads;
}

async function handlePublish(
  request: IncomingMessage,
  response: ServerResponse,
  context: RouteContext,
): Promise<void> {
  if (context.publishKey === '') {
    throw new SidecastError(
      'PUBLISH_DISABLED',
      'POST /publish is disabled: set SIDECAST_PUBLISH_KEY to enable it',
    );
  }
  requireKey(request, context.publishKey, 'publish');
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new SidecastError(
      'UNSUPPORTED_MEDIA_TYPE',
      `content-type must be application/json, got ${type ? `"${type}"` : 'none'}`,
    );
  }
  const body = await readBody(request, maxBodyBytes(context.maxEventBytes));
  const payloads = payloadsOf(body, context.maxEventBytes);
  // On a failure the answer says how many went out (see errorBody), as `sidecast publish` does.
  await publishEvents(context, payloads);
  sendJson(response, 202, { published: payloads.length });
}

/** The body of an error answer; a batch cut short also says how many of its events went out. */
function errorBody(error: SidecastError): Record<string, unknown> {
  const body = { error: error.code, message: error.message };
  return error instanceof PublishError ? { ...body, published: error.published } : body;
}

/** Answers plain HTTP requests; WebSocket upgrades never come here. */
export function createRequestHandler(context: RouteContext) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const path = (request.url ?? '/').split('?')[0];
    const route = async () => {
      if (request.method === 'POST' && path === '/publish')
        return handlePublish(request, response, context);
      if (request.method !== 'GET' && request.method !== 'HEAD')
        throw new SidecastError('METHOD_NOT_ALLOWED', 'method not allowed');
      if (path === '/healthz') return sendJson(response, 200, { status: 'ok' });
      if (path === '/readyz') {
        const readiness = await context.readiness();
        return sendJson(response, readiness.ready ? 200 : 503, {
          ready: readiness.ready,
          checks: readiness.checks,
        });
      }
      if (path === '/metrics') {
        if (context.metricsKey !== '') requireKey(request, context.metricsKey, 'metrics');
        const text = await context.metrics.scrape();
        response.writeHead(200, { 'content-type': context.metrics.registry.contentType });
        response.end(text);
        return;
      }
      if (context.page?.(request, response)) return;
      response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      response.end('sidecast: connect with a WebSocket client\n');
    };
    route().catch((error: unknown) => {
      if (response.headersSent) return;
      if (isSidecastError(error) && error.status !== undefined) {
        if (error.status >= 500)
          context.logger.warn({ code: error.code, err: error.message }, 'publish failed');
        sendJson(response, error.status, errorBody(error), headersOf(error.kind));
        return;
      }
      context.logger.error({ err: error }, 'request failed');
      sendJson(response, statusOf('INTERNAL'), { error: 'INTERNAL', message: 'internal error' });
    });
  };
}
