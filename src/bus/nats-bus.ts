import type { NatsConnection, Subscription } from 'nats';
import { SidecastError } from '../errors.js';
import { inspectEvent } from '../event.js';
import type { Bus, BusHandler, BusObserver } from './bus.js';
import type { BusDriver } from './driver.js';
import {
  createNatsLink,
  natsControlChannel,
  natsServers,
  publishCore,
  textOf,
} from './nats-shared.js';

export interface NatsBusOptions {
  readonly servers: readonly string[];
  /** Subjects are `<prefix>.events.<content_type_id>` and `<prefix>.control`. */
  readonly subjectPrefix: string;
  readonly observer?: BusObserver;
}

/** The subject an event of this content type travels on. */
export function eventSubject(prefix: string, contentTypeId: number): string {
  return `${prefix}.events.${contentTypeId}`;
}

/**
 * The subject of an event, read from its payload: a publisher learns at once of an event that
 * fan-out could never route (POST /publish refuses these before they get here).
 */
export function subjectOf(prefix: string, payload: string): string {
  const check = inspectEvent(payload);
  if (!check.ok) throw new SidecastError('EVENT_INVALID', `invalid event: ${check.reason}`);
  return eventSubject(prefix, check.contentTypeId);
}

/**
 * Core NATS, routed by interest: each event is published on the subject of its content type, and
 * a process subscribes to exactly the content types its live connections may see (setInterest),
 * so the NATS cluster sends it nothing else. No history: an event published while this process
 * is disconnected from every server is not seen by it.
 */
export function createNatsBus(options: NatsBusOptions): Bus {
  const { subjectPrefix: prefix, observer } = options;
  const link = createNatsLink({ servers: options.servers, name: 'sidecast', observer });
  const description = `${link.where}, subjects "${prefix}.events.<content_type_id>"`;
  const control = natsControlChannel(link, `${prefix}.control`);
  const subscriptions = new Map<number, Subscription>();
  let interest: ReadonlySet<number> = new Set();
  let handler: BusHandler | undefined;
  let connection: NatsConnection | undefined;

  function subscribe(nats: NatsConnection, contentTypeId: number): void {
    const subscription = nats.subscribe(eventSubject(prefix, contentTypeId), {
      callback: (error, message) => {
        if (error) return;
        const text = textOf(message.data, observer);
        if (text !== undefined) handler?.(text);
      },
    });
    subscriptions.set(contentTypeId, subscription);
  }

  /** Brings the subscriptions in line with the interest (the client renews them on reconnect). */
  function reconcile(): void {
    if (!connection || connection.isClosed()) return;
    for (const [id, subscription] of subscriptions) {
      if (interest.has(id)) continue;
      subscription.unsubscribe();
      subscriptions.delete(id);
    }
    for (const id of interest) if (!subscriptions.has(id)) subscribe(connection, id);
  }

  function begin(nats: NatsConnection): void {
    connection = nats;
    reconcile();
  }

  return {
    kind: 'nats',
    describe: () => description,
    control,
    async start(onMessage, startOptions = {}) {
      handler = onMessage;
      if (startOptions.failFast) begin(await link.connection());
      else link.connectInBackground(begin);
    },
    setInterest(contentTypeIds) {
      interest = new Set(contentTypeIds);
      reconcile();
    },
    async publish(payload) {
      await publishCore(link, description, subjectOf(prefix, payload), payload);
    },
    status: () => (link.ready ? { ready: true } : { ready: false, detail: link.detail }),
    async close() {
      handler = undefined;
      await link.close();
    },
  };
}

export interface NatsDriverOptions {
  readonly nats: string;
  readonly natsSubjectPrefix: string;
}

/** Core NATS: each process subscribes to the subjects of the content types it needs. */
export const natsDriver = {
  kind: 'nats',
  summary: 'a NATS cluster, each instance receiving only the content types its clients may see',
  local: false,
  options: ['nats', 'nats-subject-prefix'],
  create: ({ nats, natsSubjectPrefix }: NatsDriverOptions, observer?: BusObserver) =>
    createNatsBus({
      servers: natsServers(nats),
      subjectPrefix: natsSubjectPrefix,
      ...(observer ? { observer } : {}),
    }),
} as const satisfies BusDriver<NatsDriverOptions>;
