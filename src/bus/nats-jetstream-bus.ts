import {
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type StreamInfo,
} from 'nats';
import type {
  Bus,
  BusHandler,
  BusHistory,
  BusObserver,
  HistoryEntry,
  ReplayResult,
} from './bus.js';
import type { BusDriver } from './driver.js';
import { subjectOf } from './nats-bus.js';
import {
  connectedOrFail,
  createNatsLink,
  errorText,
  natsControlChannel,
  natsServers,
  PUBLISH_TIMEOUT_MS,
  textOf,
  withTimeout,
} from './nats-shared.js';
import { publishFailed } from './publish.js';
import { StreamWindow, WINDOW_MAX_BYTES, type PositionOrder } from './stream-window.js';

export interface NatsJetStreamBusOptions {
  readonly servers: readonly string[];
  /** Events are published on `<prefix>.events.<content_type_id>`, which the stream captures. */
  readonly subjectPrefix: string;
  /** The JetStream stream's name. */
  readonly stream: string;
  /** Servers holding a copy of the stream (1 to 5): 3 survives the loss of one of 3 servers. */
  readonly replicas: number;
  /** The stream keeps at most this many events. */
  readonly historyMaxEntries: number;
  /** And none older than this. */
  readonly historyMaxAgeSeconds: number;
  readonly observer?: BusObserver;
  /** Bytes kept in memory for replays. Default 64 MiB. */
  readonly windowMaxBytes?: number;
  /** How often the stream is checked for having been deleted or created anew. Default 1 s. */
  readonly checkIntervalMs?: number;
}

const CHECK_INTERVAL_MS = 1000;
/** How long a replay's read of the stream may take. */
const REPLAY_TIMEOUT_MS = 5000;

/** A stream sequence as an offset: decimal digits, 1 or more; anything else is not one. */
function parseSequence(offset: string): number | undefined {
  if (!/^\d{1,15}$/.test(offset)) return undefined;
  return Number(offset);
}

function compareSequences(a: string, b: string): number {
  return (parseSequence(a) ?? 0) - (parseSequence(b) ?? 0);
}

/** Sequence numbers as a window's positions. */
const SEQUENCE_ORDER: PositionOrder<number> = {
  parse: parseSequence,
  compare: (a, b) => a - b,
};

/**
 * NATS JetStream: events are published on their content type's subject into one stream, which
 * keeps the recent history (--history-max-entries, --history-max-age). Every process reads the
 * whole stream with an ordered consumer from the sequence after the last one it read, so an
 * event published while it was disconnected arrives late, in order, once; the stream sequence
 * is the offset, and the stream's creation time the epoch (a stream deleted and created anew has
 * another). Every process reads every event: a client's position is a place in the one ordered
 * stream, and a replay must hold every event after it, whatever content types the process
 * subscribed to since (the core `nats` bus routes by interest, without history).
 */
export function createNatsJetStreamBus(options: NatsJetStreamBusOptions): Bus {
  const { subjectPrefix: prefix, stream, observer } = options;
  const link = createNatsLink({ servers: options.servers, name: 'sidecast-jetstream', observer });
  const description = `${link.where}, JetStream stream "${stream}"`;
  const control = natsControlChannel(link, `${prefix}.control`);
  const window = new StreamWindow(
    {
      maxEntries: Math.max(1, options.historyMaxEntries),
      maxBytes: options.windowMaxBytes ?? WINDOW_MAX_BYTES,
    },
    SEQUENCE_ORDER,
    0,
  );
  let handler: BusHandler | undefined;
  let epoch = '';
  let initialized = false;
  let closed = false;
  /** The last sequence read: the consumer continues after it. */
  let lastRead = 0;
  let messages: ConsumerMessages | undefined;
  let checkTimer: NodeJS.Timeout | undefined;
  let checking = false;
  /** What lastRead was at the last look, when the stream had more: -1 when it had not. */
  let stalledAt = -1;
  let ensured: Promise<StreamInfo> | undefined;

  const maxAgeNanos = Math.round(options.historyMaxAgeSeconds * 1e9);

  /** The stream, created when missing (the first instance or publisher to come creates it). */
  async function ensureStream(jsm: JetStreamManager): Promise<StreamInfo> {
    try {
      return await jsm.streams.info(stream);
    } catch (error) {
      if (!/stream not found/i.test(errorText(error))) throw error;
      return jsm.streams.add({
        name: stream,
        subjects: [`${prefix}.events.*`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: options.replicas,
        max_msgs: options.historyMaxEntries,
        max_age: maxAgeNanos,
      });
    }
  }

  function ensureOnce(nats: NatsConnection): Promise<StreamInfo> {
    ensured ??= nats
      .jetstreamManager()
      .then(ensureStream)
      .catch((error: unknown) => {
        ensured = undefined;
        throw error;
      });
    return ensured;
  }

  function deliver(message: JsMsg): void {
    const seq = message.seq;
    if (seq <= lastRead) return;
    lastRead = seq;
    const text = textOf(message.data, observer);
    if (text === undefined) return;
    const offset = String(seq);
    window.push(offset, text, seq);
    handler?.(text, { offset, epoch });
  }

  async function follow(js: JetStreamClient): Promise<void> {
    const consumer = await js.consumers.get(stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: lastRead + 1,
    });
    if (closed) return;
    const mine = await consumer.consume({ callback: deliver });
    messages = mine;
    // A consumer the client gave up on (its server gone for good, the stream's leader moved)
    // is made again from where this process stopped reading.
    const ended = () => {
      if (!closed && messages === mine) void refollow();
    };
    mine.closed().then(ended, ended);
  }

  let refollowing = false;
  /** The live feed again, after the last sequence read, on a consumer of its own. */
  async function refollow(): Promise<void> {
    if (refollowing || closed) return;
    refollowing = true;
    try {
      const old = messages;
      messages = undefined;
      await old?.close().catch(() => undefined);
      while (!closed) {
        const nats = link.current();
        if (nats) {
          try {
            await follow(nats.jetstream());
            return;
          } catch {
            // The stream has no leader yet: try again.
          }
        }
        await new Promise((wake) => setTimeout(wake, 500));
      }
    } finally {
      refollowing = false;
    }
  }

  async function initialize(nats: NatsConnection): Promise<void> {
    const info = await ensureOnce(nats);
    epoch = info.created;
    lastRead = info.state.last_seq;
    window.reset(lastRead);
    initialized = true;
    await follow(nats.jetstream());
    checkTimer ??= setInterval(
      () => void checkStream(),
      options.checkIntervalMs ?? CHECK_INTERVAL_MS,
    ).unref();
  }

  /** Has the stream been deleted, or created anew? Then its history is another. */
  async function checkStream(): Promise<void> {
    const nats = link.current();
    if (checking || closed || !nats) return;
    checking = true;
    try {
      ensured = undefined;
      const info = await ensureOnce(nats);
      if (info.created !== epoch && !closed) {
        epoch = info.created;
        window.reset(0);
        lastRead = 0;
        await refollow();
        return;
      }
      // The stream has events this process has not read, and it read none since the last look:
      // the consumer is stuck (its server was lost without the client noticing); make it again.
      const behind = info.state.last_seq > lastRead;
      if (behind && stalledAt === lastRead) await refollow();
      stalledAt = behind ? lastRead : -1;
    } catch {
      // NATS is away: the connection's status reports that; try next time.
    } finally {
      checking = false;
    }
  }

  /** A read of the stream from `since` (exclusive) to `until`, complete or not at all. */
  async function readRange(since: number, until: number, limit: number): Promise<ReplayResult> {
    const nats = link.current();
    if (!nats) return { complete: false, gap: 'unavailable' };
    const readEpoch = epoch;
    try {
      const jsm = await nats.jetstreamManager();
      const before = await jsm.streams.info(stream);
      if (before.created !== readEpoch) return { complete: false, gap: 'epoch' };
      if (since + 1 < before.state.first_seq) return { complete: false, gap: 'trimmed' };
      const consumer = await nats.jetstream().consumers.get(stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: since + 1,
      });
      const entries: HistoryEntry[] = [];
      const batch = await consumer.fetch({ max_messages: until - since, expires: 2000 });
      const read = (async () => {
        for await (const message of batch) {
          if (message.seq > until) break;
          const text = textOf(message.data);
          if (text !== undefined) entries.push({ offset: String(message.seq), payload: text });
          if (message.seq === until) break;
        }
      })();
      await withTimeout(read, REPLAY_TIMEOUT_MS, 'replay timed out');
      await consumer.delete().catch(() => undefined);
      if (entries.length > limit) return { complete: false, gap: 'too_many' };
      // Read first, then look: nothing trimmed after `since` now means nothing was while reading.
      const after = await jsm.streams.info(stream);
      if (after.created !== readEpoch || epoch !== readEpoch)
        return { complete: false, gap: 'epoch' };
      if (since + 1 < after.state.first_seq) return { complete: false, gap: 'trimmed' };
      const last = entries.at(-1);
      if (!last || Number(last.offset) !== until) return { complete: false, gap: 'unavailable' };
      return { complete: true, entries };
    } catch {
      return { complete: false, gap: 'unavailable' };
    }
  }

  const history: BusHistory = {
    latest: () => ({ offset: String(lastRead), epoch }),
    compare: compareSequences,
    async replay(since, until, limit) {
      if (!initialized) return { complete: false, gap: 'unavailable' };
      if (since.epoch !== epoch) return { complete: false, gap: 'epoch' };
      const from = parseSequence(since.offset);
      const to = parseSequence(until);
      if (from === undefined || to === undefined || from > to || to > lastRead)
        return { complete: false, gap: 'invalid' };
      if (from === to) return { complete: true, entries: [] };
      if (to - from > limit) return { complete: false, gap: 'too_many' };
      if (window.covers(from)) {
        const entries = window.range(from, to, limit);
        return entries
          ? { complete: true, entries: entries.map(({ entry }) => entry) }
          : { complete: false, gap: 'too_many' };
      }
      return readRange(from, to, limit);
    },
  };

  return {
    kind: 'nats-jetstream',
    describe: () => description,
    control,
    history,
    async start(onMessage, startOptions = {}) {
      handler = onMessage;
      if (startOptions.failFast) {
        const nats = await link.connection();
        try {
          await initialize(nats);
        } catch (error) {
          await link.close();
          throw publishFailed(description, errorText(error), error);
        }
        return;
      }
      link.connectInBackground((nats) => {
        const attempt = (): void => {
          initialize(nats).catch(() => {
            if (!closed) setTimeout(attempt, 1000);
          });
        };
        attempt();
      });
    },
    async publish(payload) {
      const subject = subjectOf(prefix, payload);
      const nats = link.current() ?? (await connectedOrFail(link, description));
      try {
        await ensureOnce(nats);
        await nats.jetstream().publish(subject, payload, { timeout: PUBLISH_TIMEOUT_MS });
      } catch (error) {
        throw publishFailed(description, errorText(error), error);
      }
    },
    status: () => {
      if (!link.ready) return { ready: false, detail: link.detail };
      if (!initialized) return { ready: false, detail: `cannot read stream "${stream}"` };
      return { ready: true };
    },
    async close() {
      closed = true;
      handler = undefined;
      clearInterval(checkTimer);
      await messages?.close().catch(() => undefined);
      await link.close();
    },
  };
}

export interface NatsJetStreamDriverOptions {
  readonly nats: string;
  readonly natsSubjectPrefix: string;
  readonly natsStream: string;
  readonly natsStreamReplicas: number;
  readonly historyMaxEntries: number;
  readonly historyMaxAge: number;
}

/** NATS JetStream: every process reads the stream, which keeps the recent history. */
export const natsJetStreamDriver = {
  kind: 'nats-jetstream',
  summary: 'a NATS cluster with a JetStream stream, with history for reconnecting clients',
  local: false,
  options: [
    'nats',
    'nats-subject-prefix',
    'nats-stream',
    'nats-stream-replicas',
    'history-max-entries',
    'history-max-age',
  ],
  create: (options: NatsJetStreamDriverOptions, observer?: BusObserver) =>
    createNatsJetStreamBus({
      servers: natsServers(options.nats),
      subjectPrefix: options.natsSubjectPrefix,
      stream: options.natsStream,
      replicas: options.natsStreamReplicas,
      historyMaxEntries: options.historyMaxEntries,
      historyMaxAgeSeconds: options.historyMaxAge,
      ...(observer ? { observer } : {}),
    }),
} as const satisfies BusDriver<NatsJetStreamDriverOptions>;
