import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';
import { SidecastError } from './errors.js';
import {
  MessageKind,
  onMessageFromPrimary,
  onMessageFromWorker,
  sendToPrimary,
  sendToWorker,
  type MetricsMessage,
} from './workers/messages.js';

export type AuthOutcome = 'success' | 'failed' | 'unavailable' | 'timeout';
export type DropReason =
  'invalid_event' | 'too_large' | 'not_utf8' | 'no_payload' | 'slow_consumer';
export type RefusalReason =
  | 'descriptor_limit'
  | 'draining'
  | 'origin'
  | 'origin_too_long'
  | 'max_connections'
  | 'bad_handshake'
  | 'max_connections_per_user';

/** How long one collection's text answers every scrape. */
const SCRAPE_CACHE_MS = 1000;

/**
 * Wraps a collection so that scrapes share it: while one runs, every scrape waits for it; once it
 * is done, its text answers every scrape for SCRAPE_CACHE_MS. A collection costs milliseconds of
 * the event loop (and, with workers, a round of messages through every process), and /metrics
 * may be scraped by anyone who can reach the port: two thousand parallel scrapes used to mean two
 * thousand collections, with events waiting behind them. A failed collection is not kept.
 */
function sharedCollection(collect: () => Promise<string>): () => Promise<string> {
  let text: string | undefined;
  let collectedAt = 0;
  let running: Promise<string> | undefined;
  return () => {
    if (text !== undefined && performance.now() - collectedAt < SCRAPE_CACHE_MS)
      return Promise.resolve(text);
    running ??= collect()
      .then((result) => {
        text = result;
        collectedAt = performance.now();
        return result;
      })
      .finally(() => (running = undefined));
    return running;
  };
}

/**
 * What a scrape describes: this process ('local'), or, in a worker of `serve --workers N`, the
 * whole server ('workers': the primary sums every worker's registry, see collectFromWorkers).
 */
export type ScrapeScope = 'local' | 'workers';

export interface MetricsSources {
  /** Read at every scrape for sidecast_bus_connected. */
  readonly busReady?: () => boolean;
  /** Read at every scrape for sidecast_log_lines_dropped. */
  readonly logLinesDropped?: () => number;
  /** Default 'local'. */
  readonly scrape?: ScrapeScope;
}

/** Every metric sidecast exports, on a registry of its own so several servers can share a process. */
export function createMetrics(sources: MetricsSources = {}) {
  const registry = new Registry();
  // Default metrics are named process_* and nodejs_*: the prefix makes sidecast_process_* etc.
  collectDefaultMetrics({ register: registry, prefix: 'sidecast_' });
  const registers = [registry];
  const collect =
    sources.scrape === 'workers' ? collectFromWorkers(registry) : () => registry.metrics();
  const metrics = {
    registry,
    /** The text GET /metrics answers with: a shared, recent collection. */
    scrape: sharedCollection(collect),
    connections: new Gauge({
      name: 'sidecast_connections',
      help: 'Open WebSocket connections.',
      registers,
    }),
    authentications: new Counter({
      name: 'sidecast_authentications_total',
      help: 'Authentications by outcome (success, failed, unavailable, timeout).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    eventsReceived: new Counter({
      name: 'sidecast_events_received_total',
      help: 'Events received from the bus.',
      registers,
    }),
    deliveries: new Counter({
      name: 'sidecast_events_delivered_total',
      help: 'Event frames handed to client sockets.',
      registers,
    }),
    dropped: new Counter({
      name: 'sidecast_events_dropped_total',
      help: 'Events or deliveries dropped, by reason (invalid_event, too_large, not_utf8, no_payload, slow_consumer).',
      labelNames: ['reason'] as const,
      registers,
    }),
    slowConsumerCloses: new Counter({
      name: 'sidecast_slow_consumer_closes_total',
      help: 'Connections closed because their unsent data passed --max-buffered.',
      registers,
    }),
    refused: new Counter({
      name: 'sidecast_connections_refused_total',
      help: 'Connections refused, by reason: on arrival near the open-file limit (descriptor_limit), at the upgrade (draining, origin, origin_too_long, max_connections, bad_handshake) or after authentication (max_connections_per_user).',
      labelNames: ['reason'] as const,
      registers,
    }),
    replays: new Counter({
      name: 'sidecast_replays_total',
      help: 'Protocol v1 clients that asked to resume, by outcome: complete, or why not (epoch, trimmed, too_many, invalid, unavailable, no_history).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    replayedEvents: new Counter({
      name: 'sidecast_replayed_events_total',
      help: 'Events sent to protocol v1 clients from history by complete replays.',
      registers,
    }),
    permissionRechecks: new Counter({
      name: 'sidecast_permission_rechecks_total',
      help: 'Live users whose permissions and credentials were read again, by trigger: refresh (the periodic re-check) or control (a control message).',
      labelNames: ['trigger'] as const,
      registers,
    }),
    permissionRecheckFailures: new Counter({
      name: 'sidecast_permission_recheck_failures_total',
      help: 'Re-checks that failed: a batch of live users or group members the database did not answer, or one user whose update could not be applied; their connections are kept until the next re-check.',
      registers,
    }),
    permissionChanges: new Counter({
      name: 'sidecast_permission_changes_total',
      help: 'Live users whose set of visible content types changed on a re-check (their connections were updated in place).',
      registers,
    }),
    revocations: new Counter({
      name: 'sidecast_revocations_total',
      help: 'Connections closed with 1008 access revoked, by reason: inactive, deleted, credentials_changed, session_ended.',
      labelNames: ['reason'] as const,
      registers,
    }),
    controlMessages: new Counter({
      name: 'sidecast_control_messages_total',
      help: 'Control messages received, by outcome: applied, or dropped as malformed or unknown (a type this version does not know).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    keepaliveTimeouts: new Counter({
      name: 'sidecast_keepalive_timeouts_total',
      help: 'Connections dropped because they did not answer a ping within --ping-interval.',
      registers,
    }),
    busConnected: new Gauge({
      name: 'sidecast_bus_connected',
      help: '1 while the bus subscription is active, 0 while it is down or being restored.',
      registers,
      collect() {
        this.set(sources.busReady?.() ? 1 : 0);
      },
    }),
    logLinesDropped: new Gauge({
      name: 'sidecast_log_lines_dropped',
      help: 'Log lines dropped because stderr did not take them (over 4 MiB waiting).',
      registers,
      collect() {
        this.set(sources.logLinesDropped?.() ?? 0);
      },
    }),
    busReconnects: new Counter({
      name: 'sidecast_bus_reconnects_total',
      help: 'Times the bus connection was restored.',
      registers,
    }),
    busOutages: new Counter({
      name: 'sidecast_bus_outages_total',
      help: 'Times the bus connection was lost or stopped answering.',
      registers,
    }),
    authSeconds: new Histogram({
      name: 'sidecast_auth_duration_seconds',
      help: 'Time from receiving a token to the end of authentication.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    sendSeconds: new Histogram({
      name: 'sidecast_publish_to_send_seconds',
      help: 'Time from an event reaching this process to its frame being written to every recipient socket.',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * With --workers N the port is shared, so a scrape reaches one worker at random. Each worker asks
 * the primary, which collects every worker's registry and sums them (prom-client's cluster
 * aggregation), so /metrics always describes the whole server.
 */
const SCRAPE_TIMEOUT_MS = 6000;

/** Runs in the primary: answers each worker's scrape request with the sum over all workers. */
export function aggregateWorkerMetrics(): void {
  const aggregator = new AggregatorRegistry();
  // Workers asking at the same moment share one round through every worker.
  const aggregate = sharedCollection(() => aggregator.clusterMetrics());
  onMessageFromWorker((worker, message) => {
    if (message.kind !== MessageKind.Scrape) return;
    const { id } = message;
    aggregate().then(
      (text) => sendToWorker(worker, { kind: MessageKind.Metrics, id, text }),
      (error: unknown) =>
        sendToWorker(worker, { kind: MessageKind.Metrics, id, error: String(error) }),
    );
  });
}

/**
 * Runs in a worker: its registry joins the aggregation, and each collection asks the primary for
 * the sum over every worker.
 */
function collectFromWorkers(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs prom-client's answer to the primary's collection requests.
  new AggregatorRegistry();
  const pending = new Map<number, (reply: MetricsMessage | undefined) => void>();
  let nextId = 0;
  onMessageFromPrimary((message) => {
    if (message.kind === MessageKind.Metrics) pending.get(message.id)?.(message);
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => settle(undefined, 'timed out'), SCRAPE_TIMEOUT_MS);
      const settle = (reply: MetricsMessage | undefined, why = 'no answer') => {
        clearTimeout(timer);
        pending.delete(id);
        if (reply && 'text' in reply) resolve(reply.text);
        else {
          const detail = reply && 'error' in reply ? reply.error : why;
          reject(
            new SidecastError('METRICS_UNAVAILABLE', `metrics from the other workers: ${detail}`),
          );
        }
      };
      pending.set(id, settle);
      if (!sendToPrimary({ kind: MessageKind.Scrape, id })) settle(undefined);
    });
}
