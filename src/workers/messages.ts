import cluster, { type Worker } from 'node:cluster';

/**
 * Every message that crosses between the primary of `sidecast serve --workers N` and its workers,
 * declared once: a `kind` says what a message is, one guard checks any message that arrives, and
 * the helpers below send and receive only these shapes. (prom-client's own aggregation messages
 * share the channel; they have no `kind` and are left to prom-client.)
 *
 * Kinds are namespaced strings: the channel also carries messages of other libraries, and a
 * message should say what it is when logged.
 */
export const MessageKind = {
  /** Worker to primary: started, serving at `url`. */
  Listening: 'sidecast:listening',
  /** Worker to primary: cannot start; the primary prints `text` and ends every worker. */
  Failed: 'sidecast:failed',
  /** Primary to worker: drain and exit (a worker takes its orders from the primary only). */
  Stop: 'sidecast:stop',
  /**
   * Worker to primary: an event or control message to relay to every worker (memory bus),
   * acknowledged by `id`.
   */
  Publish: 'sidecast:publish',
  /** Primary to worker: an event to deliver, or a control message to act on. */
  Event: 'sidecast:event',
  /** Primary to the publishing worker: event `id` is in every worker's channel. */
  Ack: 'sidecast:ack',
  /** Worker to primary: the metrics of every worker, please, answered by `id`. */
  Scrape: 'sidecast:scrape',
  /** Primary to worker: the summed metrics `text`, or why there are none. */
  Metrics: 'sidecast:metrics',
} as const;

export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

export interface ListeningMessage {
  readonly kind: typeof MessageKind.Listening;
  readonly url: string;
}

export interface FailedMessage {
  readonly kind: typeof MessageKind.Failed;
  /** One line, printed as it is. */
  readonly text: string;
  readonly exitCode: number;
}

export interface StopMessage {
  readonly kind: typeof MessageKind.Stop;
}

/** Which of the memory bus's two channels a relayed message travels on. */
export type Topic = 'events' | 'control';

export interface PublishMessage {
  readonly kind: typeof MessageKind.Publish;
  readonly id: number;
  readonly topic: Topic;
  readonly payload: string;
}

export interface EventMessage {
  readonly kind: typeof MessageKind.Event;
  readonly topic: Topic;
  readonly payload: string;
}

export interface AckMessage {
  readonly kind: typeof MessageKind.Ack;
  readonly id: number;
}

export interface ScrapeMessage {
  readonly kind: typeof MessageKind.Scrape;
  readonly id: number;
}

export type MetricsMessage =
  | { readonly kind: typeof MessageKind.Metrics; readonly id: number; readonly text: string }
  | { readonly kind: typeof MessageKind.Metrics; readonly id: number; readonly error: string };

/** What a worker sends. */
export type ToPrimary = ListeningMessage | FailedMessage | PublishMessage | ScrapeMessage;
/** What the primary sends. */
export type ToWorker = StopMessage | EventMessage | AckMessage | MetricsMessage;
export type ClusterMessage = ToPrimary | ToWorker;

type Direction = 'primary' | 'worker';
type Fields = Readonly<Record<string, unknown>>;

const isNumber = (value: unknown): value is number => typeof value === 'number';
const isString = (value: unknown): value is string => typeof value === 'string';
const isTopic = (value: unknown): value is Topic => value === 'events' || value === 'control';

interface KindSpec {
  readonly to: Direction;
  readonly valid: (message: Fields) => boolean;
}

/** Each kind's direction and field check. A Map, so that no inherited name passes for a kind. */
const KINDS: ReadonlyMap<string, KindSpec> = new Map<MessageKind, KindSpec>([
  [MessageKind.Listening, { to: 'primary', valid: (m) => isString(m.url) }],
  [MessageKind.Failed, { to: 'primary', valid: (m) => isString(m.text) && isNumber(m.exitCode) }],
  [MessageKind.Stop, { to: 'worker', valid: () => true }],
  [
    MessageKind.Publish,
    { to: 'primary', valid: (m) => isNumber(m.id) && isTopic(m.topic) && isString(m.payload) },
  ],
  [MessageKind.Event, { to: 'worker', valid: (m) => isTopic(m.topic) && isString(m.payload) }],
  [MessageKind.Ack, { to: 'worker', valid: (m) => isNumber(m.id) }],
  [MessageKind.Scrape, { to: 'primary', valid: (m) => isNumber(m.id) }],
  [
    MessageKind.Metrics,
    { to: 'worker', valid: (m) => isNumber(m.id) && (isString(m.text) || isString(m.error)) },
  ],
]);

/**
 * Whether `value` is one of the messages above, well formed; with `to`, one sent that way. Runs
 * for every event relayed between workers, so it allocates nothing.
 */
export function isClusterMessage(value: unknown): value is ClusterMessage;
export function isClusterMessage(value: unknown, to: 'primary'): value is ToPrimary;
export function isClusterMessage(value: unknown, to: 'worker'): value is ToWorker;
export function isClusterMessage(value: unknown, to?: Direction): value is ClusterMessage {
  if (typeof value !== 'object' || value === null) return false;
  const fields = value as Fields;
  const kind = isString(fields.kind) ? KINDS.get(fields.kind) : undefined;
  return kind !== undefined && (to === undefined || kind.to === to) && kind.valid(fields);
}

/**
 * In a worker: sends `message` to the primary. False when there is no primary to send to (not a
 * worker, or the primary is gone); `callback` then is not called.
 */
export function sendToPrimary(
  message: ToPrimary,
  callback?: (error: Error | null) => void,
): boolean {
  if (!process.connected || !process.send) return false;
  process.send(message, undefined, undefined, callback);
  return true;
}

/** In the primary: sends `message` to `worker`, unless it has disconnected. */
export function sendToWorker(worker: Worker, message: ToWorker): boolean {
  if (!worker.isConnected()) return false;
  // A worker that has just died cannot take it (EPIPE); its exit is dealt with where workers
  // are forked, and an unhandled send error would end the primary.
  worker.send(message, undefined, undefined, ignoreLoss);
  return true;
}

function ignoreLoss(): void {}

/** In the primary: sends `message` to every connected worker, in the order they were forked. */
export function sendToEveryWorker(message: ToWorker): void {
  for (const worker of Object.values(cluster.workers ?? {}))
    if (worker) sendToWorker(worker, message);
}

/** In a worker: calls `handler` with each message from the primary. Returns the unsubscribe. */
export function onMessageFromPrimary(handler: (message: ToWorker) => void): () => void {
  const listener = (message: unknown) => {
    if (isClusterMessage(message, 'worker')) handler(message);
  };
  process.on('message', listener);
  return () => void process.off('message', listener);
}

/** In the primary: calls `handler` with each message from a worker. Returns the unsubscribe. */
export function onMessageFromWorker(
  handler: (worker: Worker, message: ToPrimary) => void,
): () => void {
  const listener = (worker: Worker, message: unknown) => {
    if (isClusterMessage(message, 'primary')) handler(worker, message);
  };
  cluster.on('message', listener);
  return () => void cluster.off('message', listener);
}
