import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/**
 * JSON logs on stderr, one line per notable event, so stdout stays free for command output.
 * Secrets never reach a log line: tokens, keys and database passwords are not passed to the logger,
 * and the redaction below is a second fence for fields that might carry them.
 */
export function createLogger(
  level: LogLevel,
  name = 'sidecast',
  destination: DestinationStream = pino.destination({ fd: 2, sync: false }),
): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', 'secretKey', 'publishKey', 'password', '*.password'],
        censor: '[redacted]',
      },
    },
    destination,
  );
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
