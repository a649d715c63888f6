import type { Socket } from 'node:net';
import type { StreamPosition } from '../bus/bus.js';
import { inspectEvent, oversize } from '../event.js';
import { createLogLimiter, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../router.js';
import { eventEnvelope } from './envelope.js';
import { textFrame } from './frame.js';
import type { LivePositions } from './positions.js';

/** What fan-out needs from a connection: a socket to write frames to, or a refusal. */
export interface FrameSink {
  /**
   * Writes one prebuilt frame; returns false if the connection could not take it. Sinks of the
   * v1 router are also given the event's offset (a recovering connection holds frames by it).
   */
  write(frame: Buffer, offset?: string): boolean;
}

export interface WriteBatcherOptions {
  /** Sockets written per event-loop turn before new events are read again. */
  readonly socketsPerTurn?: number;
}

/** About 2-4 ms of writes on loopback: short enough that new events are read between chunks. */
const SOCKETS_PER_TURN = 384;

/**
 * Coalesces fan-out writes. The first frame for a socket corks it and puts it at the back of a
 * queue; later frames for a socket already queued only join its cork buffer. A writer walks the
 * queue a chunk of sockets per event-loop turn and uncorks each one, so every frame that piled
 * up for a socket leaves in one writev: one system call per socket per pass, which is where
 * fan-out time goes on Linux, however many events arrived meanwhile.
 *
 * Under light load the queue is empty by the end of the turn that filled it (no added delay).
 * Under heavy load a pass over every socket takes longer, more frames join each write, and
 * each write carries more events: the batching grows with the load on its own. Between chunks
 * the event loop reads the bus, so an event that arrives during a pass rides along with the
 * pass for every socket not written yet instead of waiting for the next pass.
 *
 * Frames stay in the socket's own buffer (corked), so order with the protocol's own frames
 * (pings, close) is kept and `writableLength` counts them for the slow-consumer limit. A socket
 * destroyed while it waits is skipped.
 */
export function createWriteBatcher(options: WriteBatcherOptions = {}) {
  const perTurn = options.socketsPerTurn ?? SOCKETS_PER_TURN;
  const queued = new Set<Socket>();
  let scheduled = false;

  /** Writes up to `limit` queued sockets, oldest first. */
  function writeSome(limit: number): void {
    let written = 0;
    for (const socket of queued) {
      queued.delete(socket);
      if (!socket.destroyed) socket.uncork();
      if (++written >= limit) break;
    }
  }

  function onTurn(): void {
    scheduled = false;
    writeSome(perTurn);
    if (queued.size > 0) schedule();
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(onTurn);
  }

  return {
    write(socket: Socket, frame: Buffer): void {
      if (!queued.has(socket)) {
        socket.cork();
        queued.add(socket);
        schedule();
      }
      socket.write(frame);
    },
    /** Writes every queued socket now (used when draining). */
    flush(): void {
      writeSome(Infinity);
    },
    /** Sockets waiting for their write. */
    get queued(): number {
      return queued.size;
    },
  };
}

export type WriteBatcher = ReturnType<typeof createWriteBatcher>;

export interface FanoutLimits {
  /** --max-event-bytes. */
  readonly maxEventBytes: number;
}

/** Protocol v1's side of fan-out: its connections, and where event offsets come from. */
export interface V1Fanout {
  readonly router: Router<FrameSink>;
  readonly positions: LivePositions;
}

/**
 * The one fan-out path, shared by every bus driver: check the event once, build its frame once
 * per protocol that has recipients for it (the guide's bare payload for the guide router, v1's
 * envelope for the v1 router), hand it to each recipient without awaiting any of them. Nothing
 * is decided per recipient: which frame a connection gets is which router it is in.
 *
 * Publishers through sidecast are held to --max-event-bytes, but anything can publish on Redis.
 * A larger event is dropped before it is parsed or framed: it would cost every recipient its
 * size in buffers, and push those already holding an event past --max-buffered.
 */
export function createFanout(
  router: Router<FrameSink>,
  metrics: Metrics,
  logger: Logger,
  limits: FanoutLimits,
  v1?: V1Fanout,
) {
  // Anyone who can publish can send invalid events: the metric counts each, the log samples them.
  const dropLog = createLogLimiter(logger);
  return function dispatch(payload: string, position?: StreamPosition): number {
    const started = performance.now();
    metrics.eventsReceived.inc();
    const atLeastBytes = oversize(payload, limits.maxEventBytes);
    if (atLeastBytes !== undefined) {
      metrics.dropped.inc({ reason: 'too_large' });
      const fields = { reason: 'too large', atLeastBytes, limit: limits.maxEventBytes };
      dropLog.log('warn', 'too large', fields, 'event dropped');
      return 0;
    }
    const check = inspectEvent(payload);
    if (!check.ok) {
      metrics.dropped.inc({ reason: 'invalid_event' });
      const fields = { reason: check.reason, bytes: Buffer.byteLength(payload) };
      dropLog.log('warn', check.reason, fields, 'event dropped');
      return 0;
    }
    const id = check.contentTypeId;
    const guideRecipients = router.recipientCount(id);
    const v1Recipients = v1 === undefined ? 0 : v1.router.recipientCount(id);
    if (guideRecipients === 0 && v1Recipients === 0) return 0;
    let delivered = 0;
    if (guideRecipients > 0) {
      const frame = textFrame(payload);
      router.forEachRecipient(id, (sink) => {
        if (sink.write(frame)) delivered++;
      });
    }
    if (v1Recipients > 0) delivered += dispatchV1(v1!, id, payload, position);
    metrics.deliveries.inc(delivered);
    metrics.sendSeconds.observe((performance.now() - started) / 1000);
    return delivered;
  };

  function dispatchV1(
    v1: V1Fanout,
    id: number,
    payload: string,
    position: StreamPosition | undefined,
  ): number {
    const offset = v1.positions.offsetOf(position);
    if (offset === undefined) {
      // Only a driver with history that forgot the position: an offset-less envelope would break
      // the promise that offsets increase, so v1 clients go without this one.
      dropLog.log('error', 'no position', {}, 'event from a bus with history had no position');
      return 0;
    }
    const frame = textFrame(eventEnvelope(offset, payload));
    let delivered = 0;
    v1.router.forEachRecipient(id, (sink) => {
      if (sink.write(frame, offset)) delivered++;
    });
    return delivered;
  }
}
