import type { SidecastError } from '../errors.js';
import {
  MessageKind,
  onMessageFromPrimary,
  onMessageFromWorker,
  sendToEveryWorker,
  sendToPrimary,
  sendToWorker,
  type ToWorker,
} from '../workers/messages.js';
import type { Topic } from '../workers/messages.js';
import type { Bus, BusHandler } from './bus.js';
import { publishFailed } from './publish.js';

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

/** Runs in the primary: relays every worker's events to all workers, in the order they arrive. */
export function relayEventsBetweenWorkers(): void {
  onMessageFromWorker((sender, message) => {
    if (message.kind !== MessageKind.Publish) return;
    sendToEveryWorker({ kind: MessageKind.Event, topic: message.topic, payload: message.payload });
    // After the relays: the publisher learns its event is placed only once it is.
    sendToWorker(sender, { kind: MessageKind.Ack, id: message.id });
  });
}

/** How long a publish waits for the primary to take the event before it fails. */
export const PUBLISH_ACK_TIMEOUT_MS = 5000;

const DESCRIPTION = 'the memory bus across workers';

function primaryUnavailable(why: string): SidecastError {
  return publishFailed(DESCRIPTION, why);
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: SidecastError) => void;
  readonly timer: NodeJS.Timeout;
}

/** Runs in a worker. */
export function createClusterMemoryBus(ackTimeoutMs = PUBLISH_ACK_TIMEOUT_MS): Bus {
  const handlers = new Set<BusHandler>();
  const controlHandlers = new Set<(message: string) => void>();
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
  const onMessage = (message: ToWorker) => {
    if (message.kind === MessageKind.Ack) settle(message.id);
    else if (message.kind === MessageKind.Event && message.topic === 'events')
      for (const handler of handlers) handler(message.payload);
    else if (message.kind === MessageKind.Event)
      for (const handler of controlHandlers) handler(message.payload);
  };
  const onDisconnect = () => {
    const gone = primaryUnavailable('the primary process is gone');
    for (const id of [...pending.keys()]) settle(id, gone);
  };
  const stopListening = onMessageFromPrimary(onMessage);
  process.on('disconnect', onDisconnect);
  return {
    kind: 'memory',
    describe: () => DESCRIPTION,
    async start(handler) {
      handlers.add(handler);
    },
    publish: (payload) => relay('events', payload),
    control: {
      describe: () => `${DESCRIPTION}, control channel`,
      async start(handler) {
        controlHandlers.add(handler);
      },
      publish: (message) => relay('control', message),
    },
    status: () => ({ ready: process.connected }),
    async close() {
      handlers.clear();
      controlHandlers.clear();
      stopListening();
      process.off('disconnect', onDisconnect);
      const closing = primaryUnavailable('the bus is closed');
      for (const id of [...pending.keys()]) settle(id, closing);
    },
  };

  function relay(topic: Topic, payload: string): Promise<void> {
    const id = nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          settle(id, primaryUnavailable(`no answer from the primary within ${ackTimeoutMs} ms`)),
        ackTimeoutMs,
      );
      pending.set(id, { resolve, reject, timer });
      const sent = sendToPrimary({ kind: MessageKind.Publish, id, topic, payload }, (error) => {
        if (error) settle(id, primaryUnavailable(`cannot reach the primary: ${error.message}`));
      });
      if (!sent) settle(id, primaryUnavailable('the primary process is gone'));
    });
  }
}
