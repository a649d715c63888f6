/** Close codes sidecast sends. 1011 + "authentication failed" is the guide's contract. */
export const CloseCodes = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
} as const;

export const AUTH_FAILED_REASON = 'authentication failed';

/** What one kind of failure looks like from outside; every field is optional. */
interface ErrorSpec {
  /**
   * The public code (`error.code`, the `error` field of HTTP bodies) when it is not the kind's own
   * name: several refusals of POST /publish have always answered PUBLISH_REFUSED, and clients may
   * match on it.
   */
  readonly code?: string;
  /** The HTTP status to answer with. Without one, an HTTP request gets 500 INTERNAL. */
  readonly status?: number;
  /** Extra response headers, sent with the names exactly as written. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The WebSocket close to send. */
  readonly close?: { readonly code: number; readonly reason: string };
  /** The CLI's exit status; 1 when absent. */
  readonly exit?: number;
}

const RETRY_SOON = { 'Retry-After': '1' } as const;
const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer' } as const;

/**
 * Every kind of failure sidecast reports, each declared once with how it reaches the outside.
 * Throw sites name a kind and never a status, close code or exit status; those live here only.
 */
export const ERRORS = {
  // Start-up and CLI: a bad option, setting or argument. Exit 2, as for any usage error.
  CONFIG_INVALID: { exit: 2 },
  DB_UNAVAILABLE: {},
  DB_SCHEMA: {},
  // The server could not listen: port in use, no permission, an address not on this machine.
  LISTEN_FAILED: {},
  BUS_UNAVAILABLE: { status: 503 },
  // `sidecast token` / `connect --as` for a user who cannot log in; the demo page answers 404.
  USER_NOT_FOUND: {},
  // `sidecast connect` could not open the WebSocket.
  CLIENT_ERROR: {},
  // A worker's /metrics could not gather the others' metrics. It has always been answered as an
  // unexpected failure (500 INTERNAL), hence no status.
  METRICS_UNAVAILABLE: {},
  // A bug or an unexpected failure. HTTP answers it without the detail, which goes to the log.
  INTERNAL: { status: 500 },

  // Authentication of a WebSocket client.
  AUTH_FAILED: { close: { code: CloseCodes.internalError, reason: AUTH_FAILED_REASON } },
  AUTH_UNAVAILABLE: { close: { code: CloseCodes.tryAgainLater, reason: 'try again later' } },
  AUTH_TIMEOUT: { close: { code: CloseCodes.policyViolation, reason: 'authentication timeout' } },
  BINARY_MESSAGE: {
    close: { code: CloseCodes.unsupportedData, reason: 'binary messages are not accepted' },
  },
  SLOW_CONSUMER: { close: { code: CloseCodes.policyViolation, reason: 'slow consumer' } },
  MAX_CONNECTIONS_PER_USER: {
    close: { code: CloseCodes.policyViolation, reason: 'too many connections for this user' },
  },
  // A live user became inactive, was deleted, or their credentials changed (password, email).
  ACCESS_REVOKED: { close: { code: CloseCodes.policyViolation, reason: 'access revoked' } },

  // WebSocket upgrades refused before the socket opens.
  ORIGIN_NOT_ALLOWED: { status: 403 },
  ORIGIN_TOO_LONG: { status: 403 },
  MAX_CONNECTIONS: { status: 503, headers: RETRY_SOON },
  // A handshake ws cannot read (bad key, version, headers); answered as ws itself would.
  BAD_HANDSHAKE: { status: 400 },
  BAD_HANDSHAKE_METHOD: { status: 405 },
  // New upgrades are refused; open connections are closed so they reconnect elsewhere.
  DRAINING: {
    status: 503,
    headers: RETRY_SOON,
    close: { code: CloseCodes.goingAway, reason: 'server shutting down' },
  },

  // POST /publish and GET /metrics.
  EVENT_INVALID: { status: 400 },
  EVENT_TOO_LARGE: { code: 'PUBLISH_REFUSED', status: 413 },
  BODY_TOO_LARGE: { code: 'PUBLISH_REFUSED', status: 413 },
  PUBLISH_DISABLED: { code: 'PUBLISH_REFUSED', status: 404 },
  PUBLISH_UNAUTHORIZED: { code: 'PUBLISH_REFUSED', status: 401, headers: BEARER_CHALLENGE },
  UNSUPPORTED_MEDIA_TYPE: { code: 'PUBLISH_REFUSED', status: 415 },
  // Any method but GET, HEAD (and POST to /publish), on any path.
  METHOD_NOT_ALLOWED: { code: 'PUBLISH_REFUSED', status: 405 },
  METRICS_UNAUTHORIZED: { code: 'METRICS_REFUSED', status: 401, headers: BEARER_CHALLENGE },
} as const satisfies Readonly<Record<string, ErrorSpec>>;

/** What a throw site names: one entry of ERRORS. */
export type ErrorKind = keyof typeof ERRORS;

type PublicCodeOf<K extends ErrorKind> = (typeof ERRORS)[K] extends {
  readonly code: infer C extends string;
}
  ? C
  : K;

/** The stable codes clients and callers may match on (`error.code`, HTTP bodies' `error`). */
export type ErrorCode = { [K in ErrorKind]: PublicCodeOf<K> }[ErrorKind];

/** The kinds that have an HTTP status. */
export type HttpErrorKind = {
  [K in ErrorKind]: (typeof ERRORS)[K] extends { readonly status: number } ? K : never;
}[ErrorKind];

/** The kinds that have a WebSocket close. */
export type CloseErrorKind = {
  [K in ErrorKind]: (typeof ERRORS)[K] extends { readonly close: object } ? K : never;
}[ErrorKind];

function specOf(kind: ErrorKind): ErrorSpec {
  return ERRORS[kind];
}

export function statusOf(kind: HttpErrorKind): number {
  return specOf(kind).status!;
}

/** The headers an HTTP answer for `kind` carries besides the body's own. */
export function headersOf(kind: ErrorKind): Readonly<Record<string, string>> {
  return specOf(kind).headers ?? {};
}

export function closeOf(kind: CloseErrorKind): { readonly code: number; readonly reason: string } {
  return specOf(kind).close!;
}

export interface SidecastErrorOptions {
  cause?: unknown;
}

/**
 * The one error type of sidecast: an expected failure, told to the user in its message. `kind`
 * says precisely what failed; `code` is the public code, stable and safe to match on; `status`
 * is the HTTP status to answer with and `closeCode`/`closeReason` the WebSocket close to send
 * when the error reaches a client, all from ERRORS.
 */
export class SidecastError extends Error {
  readonly kind: ErrorKind;
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;

  constructor(kind: ErrorKind, message: string, options: SidecastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const spec = specOf(kind);
    this.name = 'SidecastError';
    this.kind = kind;
    this.code = (spec.code ?? kind) as ErrorCode;
    this.status = spec.status;
    this.closeCode = spec.close?.code;
    this.closeReason = spec.close?.reason;
  }
}

/** Whether `error` is a SidecastError, and when `code` is given, of that public code or kind. */
export function isSidecastError(
  error: unknown,
  code?: ErrorCode | ErrorKind,
): error is SidecastError {
  return (
    error instanceof SidecastError &&
    (code === undefined || error.code === code || error.kind === code)
  );
}

/** The exit status of a CLI command that failed with `error`. */
export function exitCodeOf(error: SidecastError): number {
  return specOf(error.kind).exit ?? 1;
}

export function authFailed(detail: string): SidecastError {
  // The detail goes to the log only; the client learns nothing beyond the guide's reason.
  return new SidecastError('AUTH_FAILED', detail);
}

export function authUnavailable(detail: string, cause?: unknown): SidecastError {
  return new SidecastError('AUTH_UNAVAILABLE', detail, { cause });
}
