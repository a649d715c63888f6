import cluster, { type Worker } from 'node:cluster';
import { SidecastError } from '../errors.js';
import type { Bus, BusHandler } from './bus.js';

/**
 * The memory bus across the worker processes of one `sidecast serve`: a worker sends each
 * published payload to the primary, which hands it to every worker (itself included), so
 * `--bus memory --workers N` still reaches every client of this server.
 *
 * Order: the primary is the one place events are ordered. A worker never delivers its own
 * events directly, and its publish() resolves only once the primary has written the event to
 * every worker's channel and said so. Channels are first in, first out, so of two publishes that
 * complete one after the other, whichever workers took them, every worker delivers the first one
 * first.
 */

/** Primary to workers: an event to deliver. */
interface RelayMessage {
  readonly sidecastEvent: string;
}

/** Worker to primary: an event to relay, and the id to acknowledge it with. */
interface PublishMessage {
  readonly sidecastPublish: number;
  readonly sidecastEvent: string;
}

/** Primary to the publishing worker: the event with this id is in every worker's channel. */
interface AckMessage {
  readonly sidecastAck: number;
}

function isObject(message: unknown): message is Record<string, unknown> {
  return typeof message === 'object' && message !== null;
}

function isPublishMessage(message: unknown): message is PublishMessage {
  return (
    isObject(message) &&
    typeof message.sidecastPublish === 'number' &&
    typeof message.sidecastEvent === 'string'
  );
}

function isRelayMessage(message: unknown): message is RelayMessage {
  return (
    isObject(message) &&
    typeof message.sidecastEvent === 'string' &&
    message.sidecastPublish === undefined
  );
}

function isAckMessage(message: unknown): message is AckMessage {
  return isObject(message) && typeof message.sidecastAck === 'number';
}

/** A worker that has just died cannot take a message; its own exit is dealt with elsewhere. */
function ignoreLoss(): void {}

/** Runs in the primary: relays every worker's events to all workers, in the order they arrive. */
export function relayEventsBetweenWorkers(): void {
  cluster.on('message', (sender: Worker, message: unknown) => {
    if (!isPublishMessage(message)) return;
    const relay: RelayMessage = { sidecastEvent: message.sidecastEvent };
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) worker.send(relay, undefined, undefined, ignoreLoss);
    }
    // After the relays: the publisher learns its event is placed only once it is.
    const ack: AckMessage = { sidecastAck: message.sidecastPublish };
    if (sender.isConnected()) sender.send(ack, undefined, undefined, ignoreLoss);
  });
}

/** How long a publish waits for the primary to take the event before it fails. */
export const PUBLISH_ACK_TIMEOUT_MS = 5000;

function primaryUnavailable(why: string): SidecastError {
  return new SidecastError('BUS_UNAVAILABLE', `memory bus across workers: ${why}`, {
    status: 503,
  });
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: SidecastError) => void;
  readonly timer: NodeJS.Timeout;
}

/** Runs in a worker. */
export function createClusterMemoryBus(ackTimeoutMs = PUBLISH_ACK_TIMEOUT_MS): Bus {
  const handlers = new Set<BusHandler>();
  const pending = new Map<number, Pending>();
  let nextId = 0;
  const settle = (id: number, error?: SidecastError) => {
    const waiting = pending.get(id);
    if (!waiting) return;
    pending.delete(id);
    clearTimeout(waiting.timer);
    if (error) waiting.reject(error);
    else waiting.resolve();
  };
  const onMessage = (message: unknown) => {
    if (isAckMessage(message)) settle(message.sidecastAck);
    else if (isRelayMessage(message))
      for (const handler of handlers) handler(message.sidecastEvent);
  };
  const onDisconnect = () => {
    const gone = primaryUnavailable('the primary process is gone');
    for (const id of [...pending.keys()]) settle(id, gone);
  };
  process.on('message', onMessage);
  process.on('disconnect', onDisconnect);
  return {
    kind: 'memory',
    async start(handler) {
      handlers.add(handler);
    },
    publish(payload) {
      if (!process.connected || !process.send) {
        return Promise.reject(primaryUnavailable('the primary process is gone'));
      }
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            settle(id, primaryUnavailable(`no answer from the primary within ${ackTimeoutMs} ms`)),
          ackTimeoutMs,
        );
        pending.set(id, { resolve, reject, timer });
        const message: PublishMessage = { sidecastPublish: id, sidecastEvent: payload };
        process.send!(message, undefined, undefined, (error: Error | null) => {
          if (error) settle(id, primaryUnavailable(`cannot reach the primary: ${error.message}`));
        });
      });
    },
    status: () => ({ ready: process.connected }),
    async close() {
      handlers.clear();
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      const closing = primaryUnavailable('the bus is closed');
      for (const id of [...pending.keys()]) settle(id, closing);
    },
  };
}
