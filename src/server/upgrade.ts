import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { headersOf, statusOf, type HttpErrorKind } from '../errors.js';
import type { Logger, LogLimiter } from '../log.js';
import type { Metrics, RefusalReason } from '../metrics.js';
import { createOriginCheck, MAX_ORIGIN_LENGTH } from './origin.js';

export interface UpgradeGateOptions {
  readonly allowedOrigins: readonly string[];
  /** 0: no limit. */
  readonly maxConnections: number;
}

export interface UpgradeGateDependencies {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Capacity refusals come in floods: one line per kind per interval, exact metrics. */
  readonly refusalLog: LogLimiter;
  readonly draining: () => boolean;
  readonly openConnections: () => number;
}

/** Decides which WebSocket upgrades go ahead, before ws reads the handshake. */
export interface UpgradeGate {
  /** True if the upgrade may go ahead; otherwise it has been answered with a refusal. */
  admit(request: IncomingMessage, socket: Duplex): boolean;
  /**
   * ws's `wsClientError` listener: with one, ws leaves a malformed handshake to us to answer.
   * It is answered as ws would (405 for a method other than GET, 400 otherwise, listing the
   * versions it speaks when the client's is not one of them), counted and logged at debug.
   */
  readonly refuseMalformed: (error: Error, socket: Duplex, request: IncomingMessage) => void;
}

/** The WebSocket versions ws speaks, as it lists them in a refusal. */
const SUPPORTED_VERSIONS = '13, 8';

/** Shared by every socket: a closure per connection would cost memory on each idle one. */
export function destroySocket(this: Duplex): void {
  this.destroy();
}

/** Answers an upgrade with an HTTP error and closes the socket once the answer is written. */
function answer(
  socket: Duplex,
  status: number,
  body: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    'Content-Type: text/plain',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  socket.once('finish', destroySocket);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

function speaksVersion(request: IncomingMessage): boolean {
  const version = Number(request.headers['sec-websocket-version']);
  return version === 13 || version === 8;
}

export function createUpgradeGate(
  options: UpgradeGateOptions,
  deps: UpgradeGateDependencies,
): UpgradeGate {
  const { metrics, logger, refusalLog } = deps;
  const originAllowed = createOriginCheck(options.allowedOrigins);

  function refuse(socket: Duplex, kind: HttpErrorKind, reason: RefusalReason, origin?: string) {
    metrics.refused.inc({ reason });
    const status = statusOf(kind);
    // A wrong origin is worth a line (usually a misconfigured --allowed-origins), if rate-limited
    // since anyone can send one; capacity refusals come in floods and are counted instead.
    const level = reason === 'origin' ? 'info' : 'debug';
    refusalLog.log(level, reason, { reason, status, origin }, 'upgrade refused');
    answer(socket, status, `sidecast: ${reason.replaceAll('_', ' ')}\n`, headersOf(kind));
    return false;
  }

  return {
    admit(request, socket) {
      if (deps.draining()) return refuse(socket, 'DRAINING', 'draining');
      const { origin } = request.headers;
      // No browser sends an origin this long: it is refused unread, counted apart, logged at debug.
      if (origin !== undefined && origin.length > MAX_ORIGIN_LENGTH)
        return refuse(socket, 'ORIGIN_TOO_LONG', 'origin_too_long');
      if (!originAllowed(origin)) return refuse(socket, 'ORIGIN_NOT_ALLOWED', 'origin', origin);
      if (options.maxConnections > 0 && deps.openConnections() >= options.maxConnections)
        return refuse(socket, 'MAX_CONNECTIONS', 'max_connections');
      return true;
    },
    refuseMalformed(error, socket, request) {
      metrics.refused.inc({ reason: 'bad_handshake' });
      logger.debug(
        { method: request.method, detail: error.message },
        'malformed upgrade request refused',
      );
      if (request.method !== 'GET')
        return answer(socket, statusOf('BAD_HANDSHAKE_METHOD'), error.message);
      const versions: Record<string, string> = speaksVersion(request)
        ? {}
        : { 'Sec-WebSocket-Version': SUPPORTED_VERSIONS };
      answer(socket, statusOf('BAD_HANDSHAKE'), error.message, versions);
    },
  };
}
