/**
 * The one error type of sidecast. `code` is stable and safe to match on; `status` is the HTTP
 * status to answer with, `closeCode`/`closeReason` the WebSocket close to send, when the error
 * reaches a client.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'AUTH_FAILED'
  | 'AUTH_UNAVAILABLE'
  | 'DB_UNAVAILABLE'
  | 'DB_SCHEMA'
  | 'BUS_UNAVAILABLE'
  | 'LISTEN_FAILED'
  | 'EVENT_INVALID'
  | 'PUBLISH_REFUSED'
  | 'USER_NOT_FOUND'
  | 'CLIENT_ERROR';

export interface SidecastErrorOptions {
  status?: number;
  closeCode?: number;
  closeReason?: string;
  cause?: unknown;
}

export class SidecastError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;

  constructor(code: ErrorCode, message: string, options: SidecastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SidecastError';
    this.code = code;
    this.status = options.status;
    this.closeCode = options.closeCode;
    this.closeReason = options.closeReason;
  }
}

export function isSidecastError(error: unknown, code?: ErrorCode): error is SidecastError {
  return error instanceof SidecastError && (code === undefined || error.code === code);
}

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

export function authFailed(detail: string): SidecastError {
  // The detail goes to the log only; the client learns nothing beyond the guide's reason.
  return new SidecastError('AUTH_FAILED', detail, {
    closeCode: CloseCodes.internalError,
    closeReason: AUTH_FAILED_REASON,
  });
}

export function authUnavailable(detail: string, cause?: unknown): SidecastError {
  return new SidecastError('AUTH_UNAVAILABLE', detail, {
    closeCode: CloseCodes.tryAgainLater,
    closeReason: 'try again later',
    cause,
  });
}
