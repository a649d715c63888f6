import type { Socket } from 'node:net';
import { inspectEvent } from '../event.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../router.js';
import { textFrame } from './frame.js';

/** What fan-out needs from a connection: a socket to write frames to, or a refusal. */
export interface FrameSink {
  /** Writes one prebuilt frame; returns false if the connection could not take it. */
  write(frame: Buffer): boolean;
}

/**
 * Writes are corked per socket and uncorked once per event-loop turn: every frame queued for a
 * connection in the same turn leaves in one writev, which is where fan-out time goes on Linux.
 * Order is kept because a socket's writes are never reordered.
 */
export function createWriteBatcher() {
  const corked = new Set<Socket>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (const socket of corked) socket.uncork();
    corked.clear();
  };
  return {
    write(socket: Socket, frame: Buffer): void {
      if (!corked.has(socket)) {
        socket.cork();
        corked.add(socket);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      }
      socket.write(frame);
    },
    flush,
  };
}

export type WriteBatcher = ReturnType<typeof createWriteBatcher>;

/**
 * The one fan-out path, shared by every bus driver: check the event once, build its frame once,
 * hand it to each recipient without awaiting any of them.
 */
export function createFanout(router: Router<FrameSink>, metrics: Metrics, logger: Logger) {
  return function dispatch(payload: string): number {
    const started = performance.now();
    metrics.eventsReceived.inc();
    const check = inspectEvent(payload);
    if (!check.ok) {
      metrics.dropped.inc({ reason: 'invalid_event' });
      logger.warn({ reason: check.reason, bytes: Buffer.byteLength(payload) }, 'event dropped');
      return 0;
    }
    const recipients = router.recipients(check.contentTypeId);
    if (recipients.size === 0) return 0;
    const frame = textFrame(payload);
    let delivered = 0;
    for (const sink of recipients) if (sink.write(frame)) delivered++;
    metrics.deliveries.inc(delivered);
    metrics.sendSeconds.observe((performance.now() - started) / 1000);
    return delivered;
  };
}
