import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/**
 * How much log output may wait in memory for stderr. Past it, lines are dropped and counted, so
 * that a stalled reader (a full pipe, a stopped log shipper) cannot grow the process without end.
 */
export const LOG_BUFFER_BYTES = 4 * 1024 * 1024;

/** pino's asynchronous destination on `fd`, holding at most `maxBytes` of unwritten lines. */
export interface BoundedDestination {
  readonly stream: ReturnType<typeof pino.destination>;
  /** Lines dropped so far because the buffer was full. */
  dropped(): number;
}

export function boundedDestination(fd = 2, maxBytes = LOG_BUFFER_BYTES): BoundedDestination {
  // sonic-boom's maxLength drops a write that would take its buffer past the bound, emitting 'drop'.
  const stream = pino.destination({ fd, sync: false, maxLength: maxBytes });
  let dropped = 0;
  stream.on('drop', () => dropped++);
  return { stream, dropped: () => dropped };
}

/**
 * JSON logs on stderr, one line per notable event, so stdout stays free for command output.
 * Secrets never reach a log line: tokens, keys and database passwords are not passed to the logger,
 * and the redaction below is a second fence for fields that might carry them.
 */
export function createLogger(
  level: LogLevel,
  name = 'sidecast',
  destination?: DestinationStream,
): Logger {
  const bounded = destination ? undefined : boundedDestination();
  const logger = pino(
    {
      name,
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', 'secretKey', 'publishKey', 'metricsKey', 'password', '*.password'],
        censor: '[redacted]',
      },
    },
    destination ?? bounded!.stream,
  );
  if (bounded) {
    destinations.set(logger, bounded);
    reportDroppedLines(logger, bounded);
  }
  return logger;
}

const destinations = new WeakMap<Logger, BoundedDestination>();

/** Lines a logger from createLogger dropped because stderr did not take them (for a metric). */
export function logLinesDropped(logger: Logger): number {
  return destinations.get(logger)?.dropped() ?? 0;
}

/** Once stderr has taken everything queued, says how many lines were lost meanwhile. */
function reportDroppedLines(logger: Logger, destination: BoundedDestination): void {
  let reported = 0;
  destination.stream.on('drain', () => {
    const lost = destination.dropped() - reported;
    if (lost === 0) return;
    reported += lost;
    logger.warn({ droppedLines: lost }, 'log lines dropped: stderr was not taking them');
  });
}

/** Default LogLimiter interval. */
export const LOG_INTERVAL_MS = 10_000;

/** At most this many keys are tracked; more fall back to one shared key. */
const MAX_KEYS = 64;

export interface LogLimiter {
  /**
   * Logs `msg` unless a line for `key` went out less than the interval ago, in which case the
   * occurrence is only counted. Counted occurrences are reported in one line, with the fields
   * of the last of them and `suppressed: N`, once the interval has passed.
   */
  log(level: Level, key: string, fields: Record<string, unknown>, msg: string): void;
}

interface KeyState {
  last: number;
  suppressed: number;
  fields: Record<string, unknown>;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Rate-limits lines anyone can cause (bad tokens, invalid events, refused upgrades): one line per
 * key per interval, the first at once. The metrics keep exact counts; the log only has to say it
 * is happening, without a flood of lines costing disk, CPU and memory.
 */
export function createLogLimiter(logger: Logger, intervalMs = LOG_INTERVAL_MS): LogLimiter {
  const keys = new Map<string, KeyState>();

  function summarize(level: Level, state: KeyState, msg: string): void {
    state.timer = undefined;
    if (state.suppressed === 0) return;
    logger[level]({ ...state.fields, suppressed: state.suppressed }, msg);
    state.last = Date.now();
    state.suppressed = 0;
  }

  return {
    log(level, key, fields, msg) {
      if (!logger.isLevelEnabled(level)) return;
      let slot = `${level}:${key}`;
      if (!keys.has(slot) && keys.size >= MAX_KEYS) slot = '(other)';
      const now = Date.now();
      const state = keys.get(slot);
      if (state === undefined || (now - state.last >= intervalMs && state.suppressed === 0)) {
        logger[level](fields, msg);
        if (state) state.last = now;
        else keys.set(slot, { last: now, suppressed: 0, fields, timer: undefined });
        return;
      }
      state.suppressed++;
      state.fields = fields;
      // The timer, not the next occurrence, reports the count: a flood that stops is reported too.
      state.timer ??= setTimeout(
        () => summarize(level, state, msg),
        Math.max(0, state.last + intervalMs - now),
      ).unref();
    },
  };
}

/** Strips user:password from a URL before it is shown anywhere. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
