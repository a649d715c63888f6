import { Redis, type RedisOptions } from 'ioredis';
import { SidecastError } from '../errors.js';
import { redactUrl } from '../log.js';
import type {
  Bus,
  BusHandler,
  BusHistory,
  BusObserver,
  HistoryEntry,
  ReplayResult,
  StreamPosition,
} from './bus.js';
import type { BusDriver } from './driver.js';
import { watchPings, type PingWatch } from './ping-watch.js';
import { publishFailed } from './publish.js';
import {
  ENSURE_EPOCH,
  epochKey,
  historyLost,
  newEpoch,
  ROTATE_EPOCH,
  type HistoryCheck,
  type HistorySeen,
} from './stream-epoch.js';
import {
  compareEntryIds,
  compareIdStrings,
  ENTRY_ID_ORDER,
  entryTime,
  parseEntryId,
  ZERO_ID,
  type EntryId,
} from './stream-ids.js';
import {
  historyFloor,
  isNoSuchKey,
  rangeEntries,
  readEntries,
  streamInfo,
  type StreamEntry,
  type StreamInfo,
} from './stream-replies.js';
import { StreamWindow, WINDOW_MAX_BYTES } from './stream-window.js';
import { redisControlChannel } from './redis-bus.js';
import { errorText, retryDelay } from './redis-shared.js';

export interface RedisStreamsBusOptions {
  readonly url: string;
  /** The stream key. */
  readonly stream: string;
  /** The pub/sub channel of control messages (see ControlChannel). */
  readonly controlChannel: string;
  /** publish() trims the stream to about this many entries (XADD MAXLEN ~). */
  readonly historyMaxEntries: number;
  /** A replay reaching an entry older than this many seconds counts as trimmed. */
  readonly historyMaxAgeSeconds: number;
  readonly observer?: BusObserver;
  /** Events kept in memory for replays. Default: historyMaxEntries. */
  readonly windowMaxEntries?: number;
  /** Bytes kept in memory for replays. Default 64 MiB. */
  readonly windowMaxBytes?: number;
  /** How often the history is checked for a loss, and Redis for a hang. Default 1 s. */
  readonly checkIntervalMs?: number;
  /** How long a PING may go unanswered before the bus counts as not ready. Default 3 s. */
  readonly hangAfterMs?: number;
  /** How long one XREAD blocks. Default 5 s. */
  readonly blockMs?: number;
  /** Entries one XREAD returns at most. Default 1000. */
  readonly readCount?: number;
}

const CHECK_INTERVAL_MS = 1000;
const HANG_AFTER_MS = 3000;
const BLOCK_MS = 5000;
const READ_COUNT = 1000;
/** Bounds every command of the control connection, so a hung Redis fails a replay or publish. */
const COMMAND_TIMEOUT_MS = 5000;
const QUIT_TIMEOUT_MS = 1000;

const DROPS = {
  no_payload: 'stream entry without a payload field',
  not_utf8: 'not UTF-8',
} as const;

/** A MULTI or pipeline reply: each command's error or result. */
type Replies = [Error | null, unknown][] | null;

function result(replies: Replies, index: number): unknown {
  const reply = replies?.[index];
  if (!reply) throw new Error('Redis discarded the transaction');
  if (reply[0]) throw reply[0];
  return reply[1];
}

/** XINFO STREAM's reply, undefined for a stream that does not exist. */
function infoOrMissing(replies: Replies, index: number): StreamInfo | undefined {
  try {
    return streamInfo(result(replies, index));
  } catch (error) {
    if (isNoSuchKey(error)) return undefined;
    throw error;
  }
}

/**
 * Redis Streams: every instance reads the whole stream with XREAD BLOCK on a connection of its
 * own, from the last entry id it read, without a consumer group (each instance needs every
 * event). A lost connection is reopened by ioredis and the read resumes from that id, so what
 * was published meanwhile and is still in the stream arrives late, in order, once.
 *
 * A second connection, which never blocks, publishes (XADD MAXLEN ~), reads older history for
 * replays and, every second, PINGs (a hung Redis answers nothing and sends no error) and checks
 * that the history is still the one this process knows (see ./stream-epoch.ts).
 */
export function createRedisStreamsBus(options: RedisStreamsBusOptions): Bus {
  const { url, stream, observer } = options;
  const key = epochKey(stream);
  const where = redactUrl(url);
  const description = `Redis at ${where}, stream "${stream}"`;
  const controlChannel = redisControlChannel(url, options.controlChannel);
  const checkIntervalMs = options.checkIntervalMs ?? CHECK_INTERVAL_MS;
  const blockMs = options.blockMs ?? BLOCK_MS;
  const readCount = options.readCount ?? READ_COUNT;
  const maxAgeMs = options.historyMaxAgeSeconds * 1000;
  const window = new StreamWindow(
    {
      maxEntries: options.windowMaxEntries ?? options.historyMaxEntries,
      maxBytes: options.windowMaxBytes ?? WINDOW_MAX_BYTES,
    },
    ENTRY_ID_ORDER,
    parseEntryId(ZERO_ID)!,
  );

  let reader: Redis | undefined;
  let control: Redis | undefined;
  let pings: PingWatch | undefined;
  let checkTimer: NodeJS.Timeout | undefined;
  let handler: BusHandler | undefined;
  let closed = false;
  /** The start position is resolved and the epoch known: reading may begin. */
  let initialized = false;
  let up = false;
  let everUp = false;
  let outageReported = false;
  let detail = 'not started';
  let epoch = '';
  /** The last entry read, event or not: the next XREAD starts after it. */
  let lastRead = ZERO_ID;
  let lastReadId: EntryId = parseEntryId(ZERO_ID)!;
  /** The last event handed to the handler, or the start position: what latest() gives. */
  let lastDelivered = ZERO_ID;
  let seen: HistorySeen = { exists: false, entriesAdded: 0 };
  let checking = false;
  let failFast = false;
  const inFlight = new Map<string, Promise<ReplayResult>>();

  function connection(role: 'reader' | 'control'): Redis {
    const common: RedisOptions = {
      lazyConnect: true,
      connectionName: `sidecast-stream-${role}`,
      retryStrategy: retryDelay,
      connectTimeout: 5000,
      // Replies as RESP2 arrays, whatever the client's default protocol.
      protocol: 2,
    };
    // The reader's commands wait across reconnections (its XREAD is sent again); the control
    // connection's fail at once while Redis is away, so a replay or publish reports it.
    return role === 'reader'
      ? new Redis(url, { ...common, maxRetriesPerRequest: null })
      : new Redis(url, {
          ...common,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          commandTimeout: COMMAND_TIMEOUT_MS,
        });
  }

  function controlConnection(): Redis {
    if (!control) {
      control = connection('control');
      // Failures reach whoever asked (publish, replay, check); 'close' below reports outages.
      control.on('error', () => undefined);
    }
    return control;
  }

  /**
   * The first connection of each client, shared: the control connection queues nothing while
   * offline, so a command sent while it is still connecting would fail at once.
   */
  const firstConnect = new WeakMap<Redis, Promise<void>>();
  async function connected(client: Redis): Promise<void> {
    if (client.status === 'wait') firstConnect.set(client, client.connect());
    await firstConnect.get(client);
  }

  function markDown(why: string): void {
    if (closed) return;
    detail = why;
    const wasUp = up;
    up = false;
    if (wasUp || !outageReported) {
      outageReported = true;
      // With failFast, start-up reports the first failure itself, as its one line.
      if (!(failFast && !initialized)) observer?.onDown?.(why);
    }
  }

  /** `silently` after a hang, which onResumed reported. */
  function markUpIfReady(silently = false): void {
    if (closed || up || !initialized) return;
    if (reader?.status !== 'ready' || control?.status !== 'ready' || pings?.stalled) return;
    up = true;
    detail = '';
    if (!silently) {
      if (everUp && outageReported) observer?.onReconnect?.();
      else observer?.onUp?.();
    }
    everUp = true;
    outageReported = false;
  }

  function watch(client: Redis): void {
    client.on('error', (error: unknown) =>
      markDown(`cannot reach Redis at ${where}: ${errorText(error)}`),
    );
    client.on('close', () => {
      if (client === control) pings?.reset();
      markDown(`lost connection to Redis at ${where}`);
    });
    client.on('ready', () => {
      markUpIfReady();
      // After a reconnection Redis may have restarted: check the history at once.
      if (client === control && initialized) void checkHistory();
    });
  }

  /** Resolves the live feed's start and fills the window, in one MULTI so nothing falls between. */
  async function initialize(client: Redis): Promise<void> {
    const value = (await client.eval(ENSURE_EPOCH, 1, key, newEpoch())) as string;
    const replies = (await client
      .multi()
      .callBuffer('XINFO', 'STREAM', stream)
      .callBuffer('XREVRANGE', stream, '+', '-', 'COUNT', windowCapacity())
      .exec()) as Replies;
    const info = infoOrMissing(replies, 0);
    const newest = rangeEntries(result(replies, 1)).reverse();
    epoch = value;
    seen = { exists: info !== undefined, entriesAdded: info?.entriesAdded ?? 0 };
    // All entries read: the window holds the whole stream, which lost nothing after its floor.
    // Fewer read than there are: every event after the oldest one read is here.
    const whole = newest.length < windowCapacity();
    const zero = parseEntryId(ZERO_ID)!;
    const floor = whole ? (info ? historyFloor(info) : zero) : parseEntryId(newest[0]!.id)!;
    window.reset(floor);
    for (const entry of newest) if ('payload' in entry) window.push(entry.id, entry.payload);
    // The end of the stream is where the live feed starts (XREAD's "$", resolved now): the last
    // id Redis gave out, which the MULTI read together with the newest entries.
    const start = info?.lastGeneratedId ?? ZERO_ID;
    lastRead = start;
    lastReadId = parseEntryId(start) ?? parseEntryId(ZERO_ID)!;
    lastDelivered = start;
    initialized = true;
  }

  function windowCapacity(): number {
    return Math.max(1, options.windowMaxEntries ?? options.historyMaxEntries);
  }

  function deliver(entries: readonly StreamEntry[]): void {
    for (const entry of entries) {
      const id = parseEntryId(entry.id);
      // Never twice: a read sent again after a reconnection cannot hand out an entry twice.
      if (!id || compareEntryIds(id, lastReadId) <= 0) continue;
      lastRead = entry.id;
      lastReadId = id;
      // Read from it: the stream exists, so its deletion is a loss even before the next check.
      if (!seen.exists) seen = { ...seen, exists: true };
      if (!('payload' in entry)) {
        observer?.onDropped?.(entry.dropped, DROPS[entry.dropped]);
        continue;
      }
      window.push(entry.id, entry.payload);
      lastDelivered = entry.id;
      handler?.(entry.payload, { offset: entry.id, epoch });
    }
  }

  async function readLoop(client: Redis): Promise<void> {
    while (!closed) {
      try {
        const reply = await client.callBuffer(
          'XREAD',
          'COUNT',
          readCount,
          'BLOCK',
          blockMs,
          'STREAMS',
          stream,
          lastRead,
        );
        if (closed) return;
        deliver(readEntries(reply));
        markUpIfReady();
      } catch (error) {
        if (closed) return;
        // The connection's 'error' and 'close' report outages; this is the read that failed.
        if (client.status === 'ready')
          markDown(`cannot read stream "${stream}": ${errorText(error)}`);
        await new Promise((wake) => setTimeout(wake, 200));
      }
    }
  }

  /** One look at the history in Redis: has it been lost, or has another instance said so? */
  async function checkHistory(): Promise<void> {
    const client = control;
    if (checking || closed || !initialized || client?.status !== 'ready') return;
    checking = true;
    try {
      const replies = (await client
        .multi()
        .get(key)
        .callBuffer('XINFO', 'STREAM', stream)
        .exec()) as Replies;
      const now: HistoryCheck = {
        epoch: result(replies, 0) as string | null,
        stream: infoOrMissing(replies, 1),
      };
      let current = now.epoch;
      if (historyLost(seen, now)) {
        current = (await client.eval(ROTATE_EPOCH, 1, key, epoch, newEpoch())) as string;
      }
      seen = { exists: now.stream !== undefined, entriesAdded: now.stream?.entriesAdded ?? 0 };
      if (current !== null && current !== epoch) adopt(current);
    } catch {
      // Redis is away or hung: the connection events and the PINGs report that; try next time.
    } finally {
      checking = false;
    }
  }

  /** A new history: what the window holds belongs to the old one. */
  function adopt(value: string): void {
    epoch = value;
    window.reset(lastReadId);
    inFlight.clear();
  }

  function begin(): void {
    const client = reader!;
    void readLoop(client);
    checkTimer ??= setInterval(() => void checkHistory(), checkIntervalMs).unref();
    markUpIfReady();
  }

  /** Start-up that waits for Redis: tries again with backoff until the history can be read. */
  async function initializeInBackground(client: Redis): Promise<void> {
    for (let attempt = 0; !closed; attempt++) {
      try {
        await connected(client).catch(() => undefined);
        if (client.status === 'ready') {
          await initialize(client);
          begin();
          return;
        }
      } catch (error) {
        markDown(`cannot read stream "${stream}" on Redis at ${where}: ${errorText(error)}`);
      }
      await new Promise((wake) => setTimeout(wake, retryDelay(attempt)));
    }
  }

  function tooOld(id: EntryId): boolean {
    return entryTime(id) < Date.now() - maxAgeMs;
  }

  function fromEntries(
    entries: readonly { readonly parsed: EntryId; readonly entry: HistoryEntry }[],
  ): ReplayResult {
    const first = entries[0];
    if (first && tooOld(first.parsed)) return { complete: false, gap: 'trimmed' };
    return { complete: true, entries: entries.map(({ entry }) => entry) };
  }

  /** One read of the range from Redis: XRANGE, then XINFO to learn whether it was trimmed. */
  async function readRange(since: EntryId, sinceText: string, until: string, limit: number) {
    const client = control;
    if (!client || client.status !== 'ready' || pings?.stalled)
      return { complete: false, gap: 'unavailable' } as const;
    const readEpoch = epoch;
    let replies: Replies;
    try {
      // XRANGE first: if nothing after `since` had been deleted by the time of the XINFO that
      // follows, nothing had been when XRANGE read either, so what it read is complete.
      replies = (await client
        .pipeline()
        .callBuffer('XRANGE', stream, `(${sinceText}`, until, 'COUNT', limit + 1)
        .callBuffer('XINFO', 'STREAM', stream)
        .exec()) as Replies;
    } catch {
      return { complete: false, gap: 'unavailable' } as const;
    }
    try {
      const raw = rangeEntries(result(replies, 0));
      const info = infoOrMissing(replies, 1);
      if (readEpoch !== epoch) return { complete: false, gap: 'epoch' } as const;
      if (raw.length > limit) return { complete: false, gap: 'too_many' } as const;
      // A stream gone (not yet seen as a loss) kept nothing after `since` either.
      if (!info || compareEntryIds(since, historyFloor(info)) < 0)
        return { complete: false, gap: 'trimmed' } as const;
      const events = raw.flatMap((entry) => {
        const parsed = parseEntryId(entry.id);
        return parsed && 'payload' in entry
          ? [{ parsed, entry: { offset: entry.id, payload: entry.payload } }]
          : [];
      });
      return fromEntries(events);
    } catch {
      return { complete: false, gap: 'unavailable' } as const;
    }
  }

  async function close(): Promise<void> {
    closed = true;
    up = false;
    detail = 'closed';
    clearInterval(checkTimer);
    pings?.stop();
    const controlClosed = controlChannel.close();
    await Promise.all(
      [reader, control].map(async (client) => {
        if (!client) return;
        if (client === control && client.status === 'ready') {
          // A Redis that stopped answering would never acknowledge QUIT.
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)));
          await Promise.race([client.quit().catch(() => undefined), timeout]);
          clearTimeout(timer);
        }
        // The reader is usually inside a blocking XREAD, which QUIT would wait behind.
        client.disconnect();
      }),
    );
    await controlClosed;
  }

  const history: BusHistory = {
    latest: () => ({ offset: lastDelivered, epoch }),
    compare: compareIdStrings,
    async replay(since: StreamPosition, until: string, limit: number): Promise<ReplayResult> {
      if (!initialized) return { complete: false, gap: 'unavailable' };
      if (since.epoch !== epoch) return { complete: false, gap: 'epoch' };
      const from = parseEntryId(since.offset);
      const to = parseEntryId(until);
      if (!from || !to || compareEntryIds(from, to) > 0 || compareEntryIds(to, lastReadId) > 0)
        return { complete: false, gap: 'invalid' };
      if (compareEntryIds(from, to) === 0) return { complete: true, entries: [] };
      if (window.covers(from)) {
        const entries = window.range(from, to, limit);
        return entries ? fromEntries(entries) : { complete: false, gap: 'too_many' };
      }
      // Concurrent replays of one range (clients reconnecting together) share one read.
      const shared = `${epoch} ${since.offset} ${until} ${limit}`;
      let pending = inFlight.get(shared);
      if (!pending) {
        pending = readRange(from, since.offset, until, limit);
        inFlight.set(shared, pending);
        const settled = pending;
        void settled.finally(() => {
          if (inFlight.get(shared) === settled) inFlight.delete(shared);
        });
      }
      return pending;
    },
  };

  return {
    kind: 'redis-streams',
    describe: () => description,
    history,
    control: controlChannel.channel,
    async start(onMessage, startOptions = {}) {
      handler = onMessage;
      failFast = startOptions.failFast ?? false;
      const readerClient = connection('reader');
      reader = readerClient;
      const controlClient = controlConnection();
      watch(readerClient);
      watch(controlClient);
      pings = watchPings({
        client: controlClient,
        intervalMs: checkIntervalMs,
        hangAfterMs: options.hangAfterMs ?? HANG_AFTER_MS,
        onStall: (silentMs) => {
          if (closed) return;
          up = false;
          outageReported = true;
          observer?.onDown?.(
            `Redis at ${where} did not answer for ${Math.floor(silentMs / 1000)} s`,
          );
        },
        // The same connections answer again: resumed, not reconnected.
        onAnswer: () => {
          if (closed) return;
          outageReported = false;
          observer?.onResumed?.();
          markUpIfReady(true);
        },
      });
      readerClient.connect().catch(() => undefined);
      if (!failFast) {
        void initializeInBackground(controlClient);
        return;
      }
      try {
        await connected(controlClient);
        await initialize(controlClient);
      } catch (error) {
        await close();
        throw new SidecastError(
          'BUS_UNAVAILABLE',
          `cannot reach Redis at ${where}: ${errorText(error)}`,
          { cause: error },
        );
      }
      begin();
    },
    async publish(payload) {
      const client = controlConnection();
      try {
        await connected(client);
        await client.call(
          'XADD',
          stream,
          'MAXLEN',
          '~',
          options.historyMaxEntries,
          '*',
          'payload',
          payload,
        );
      } catch (error) {
        throw publishFailed(description, errorText(error), error);
      }
    },
    status() {
      if (up && !pings?.stalled) return { ready: true };
      if (pings?.stalled)
        return {
          ready: false,
          detail: `Redis at ${where} did not answer for ${Math.floor(pings.silentMs() / 1000)} s`,
        };
      return { ready: false, detail: detail || 'not connected' };
    },
    close,
  };
}

export interface RedisStreamsDriverOptions {
  readonly redis: string;
  readonly stream: string;
  readonly controlChannel: string;
  readonly historyMaxEntries: number;
  readonly historyMaxAge: number;
}

/** Redis Streams: every process reads --stream on --redis, which keeps the recent history. */
export const redisStreamsDriver = {
  kind: 'redis-streams',
  summary: 'shared by every instance, with history for reconnecting clients',
  local: false,
  options: ['redis', 'stream', 'control-channel', 'history-max-entries', 'history-max-age'],
  create: (
    { redis, stream, controlChannel, historyMaxEntries, historyMaxAge }: RedisStreamsDriverOptions,
    observer?: BusObserver,
  ) =>
    createRedisStreamsBus({
      url: redis,
      stream,
      controlChannel,
      historyMaxEntries,
      historyMaxAgeSeconds: historyMaxAge,
      ...(observer ? { observer } : {}),
    }),
} as const satisfies BusDriver<RedisStreamsDriverOptions>;
