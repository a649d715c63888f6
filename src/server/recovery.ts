import type { Principal } from '../auth/authenticator.js';
import type { BusHistory, HistoryEntry, ReplayResult, StreamPosition } from '../bus/bus.js';
import { inspectEvent, oversize } from '../event.js';
import type { LogLimiter } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../router.js';
import { eventEnvelope, welcomeMessage } from './envelope.js';
import type { FrameSink } from './fanout.js';
import { textFrame } from './frame.js';
import type { LiveConnection } from './protocol.js';

/** What every recovery of a server shares. */
export interface RecoveryContext {
  readonly router: Router<FrameSink>;
  readonly history: BusHistory;
  /** --recover-max: the most history entries one replay may scan. */
  readonly recoverMax: number;
  /** --max-event-bytes: larger entries are skipped, as fan-out drops them live. */
  readonly maxEventBytes: number;
  /** What each history entry means for a replay, worked out once (see screen()). */
  readonly screened: ScreenedEntries;
  /** Bytes of live frames a recovering connection may hold back before it is a slow consumer. */
  readonly maxBuffered: number;
  readonly metrics: Metrics;
  readonly log: LogLimiter;
}

/** What replaying one history entry needs, worked out once per entry, not once per client. */
export interface Screened {
  /** Undefined for an entry fan-out would drop (not a valid event, over --max-event-bytes). */
  readonly contentTypeId: number | undefined;
  /** Its v1 frame, built the first time a client may see it. */
  frame?: Buffer;
}

/**
 * A bus hands out the same entry object to every replay that reads it (its window's entries, or
 * one read shared by concurrent replays), so after a deploy 10,000 clients replaying the same
 * recent history parse each event once and share each frame. One cache per server: the verdict
 * depends on its --max-event-bytes.
 */
export type ScreenedEntries = WeakMap<HistoryEntry, Screened>;

function screen(entry: HistoryEntry, cache: ScreenedEntries, maxEventBytes: number): Screened {
  let screened = cache.get(entry);
  if (!screened) {
    const check =
      oversize(entry.payload, maxEventBytes) === undefined
        ? inspectEvent(entry.payload)
        : undefined;
    screened = { contentTypeId: check?.ok ? check.contentTypeId : undefined };
    cache.set(entry, screened);
  }
  return screened;
}

/**
 * One v1 connection catching up from `since`. It stands in the router for the connection from
 * the moment the live feed's position is taken, so no live event is lost while history is read;
 * the frames it receives meanwhile are held, with their offsets, until the replay is written.
 * Then, in one synchronous step (no event can arrive in between), it writes the welcome, the
 * replayed events, the held frames that come after the position the replay ended at, and hands
 * its place in the router to the connection.
 */
export class Recovery implements FrameSink {
  readonly #connection: LiveConnection;
  /** What the connection may see: replayed entries are screened with it, the router told it. */
  #allowed: ReadonlySet<number>;
  readonly #userId: string;
  /** The live feed's position when the recovery started: the replay ends there. */
  readonly #start: StreamPosition;
  readonly #context: RecoveryContext;
  #held: { frame: Buffer; offset: string }[] = [];
  #heldBytes = 0;
  #over = false;

  constructor(connection: LiveConnection, principal: Principal, context: RecoveryContext) {
    this.#connection = connection;
    this.#allowed = principal.contentTypeIds;
    this.#userId = principal.userId;
    this.#context = context;
    this.#start = context.history.latest();
    context.router.add(this, principal.contentTypeIds);
  }

  /** Live frames from fan-out, held until the replay is written. */
  write(frame: Buffer, offset?: string): boolean {
    if (this.#over || offset === undefined) return false;
    this.#heldBytes += frame.length;
    if (this.#heldBytes > this.#context.maxBuffered) {
      // What it would hold counts against the same limit as what a socket holds unsent.
      this.#end();
      this.#connection.closeSlow();
      return false;
    }
    this.#held.push({ frame, offset });
    return true;
  }

  /** The connection left: nothing more is written. */
  cancel(): void {
    this.#end();
  }

  /**
   * Reads history after `since`, then catches the connection up and makes it live. `caughtUp` is
   * called as it stops standing in for the connection, before anything is written: from then on
   * the connection leaving is the connection's own business (a write that fails ends this).
   */
  async run(since: StreamPosition, caughtUp: () => void): Promise<void> {
    const { history, recoverMax } = this.#context;
    let result: ReplayResult;
    try {
      result = await history.replay(since, this.#start.offset, recoverMax);
    } catch {
      // The driver promises a result; one that throws anyway is a history that cannot be read.
      result = { complete: false, gap: 'unavailable' };
    }
    if (this.#over) return;
    // The history started again while it was read: what was read and the live feed now belong
    // to different histories, so no replay can be promised; held frames go as they came.
    const sameHistory = history.latest().epoch === this.#start.epoch;
    if (!sameHistory && result.complete) result = { complete: false, gap: 'epoch' };
    const held = this.#held;
    this.#end();
    caughtUp();
    const replayed = result.complete ? this.#permitted(result.entries) : [];
    this.#count(result, replayed.length);
    const connection = this.#connection;
    const welcome = welcomeMessage({
      position: this.#start,
      recoverable: true,
      recovered: result.complete,
      replayed: replayed.length,
    });
    if (!connection.write(textFrame(welcome))) return;
    for (const frame of replayed) if (!connection.write(frame)) return;
    // Held frames arrived after the start position was taken, so they should all come after it
    // and after the replay's last entry; comparing makes sure (a driver may read past `until`),
    // so that an event in both the replay and the live feed goes once, in order.
    let last = this.#start.offset;
    const lastEntry = result.complete ? result.entries.at(-1) : undefined;
    if (lastEntry !== undefined && history.compare(lastEntry.offset, last) > 0)
      last = lastEntry.offset;
    for (const { frame, offset } of held) {
      if (sameHistory) {
        if (history.compare(offset, last) <= 0) continue;
        last = offset;
      }
      if (!connection.write(frame)) return;
    }
    this.#context.router.add(connection, this.#allowed);
  }

  /**
   * The connection's permissions changed while it recovers: what is replayed from now on, and
   * where it goes live, follow. (Frames already held were sent to it under the old set.)
   */
  update(contentTypeIds: ReadonlySet<number>): boolean {
    const changed = this.#context.router.update(this, contentTypeIds);
    this.#allowed = contentTypeIds;
    return changed;
  }

  /** Leaves the router and drops what it held. */
  #end(): void {
    this.#over = true;
    this.#held = [];
    this.#context.router.remove(this);
  }

  /** The entries this user may see now, as frames: permissions are those of this connection. */
  #permitted(entries: readonly HistoryEntry[]): Buffer[] {
    const { maxEventBytes } = this.#context;
    const allowed = this.#allowed;
    const frames: Buffer[] = [];
    for (const entry of entries) {
      const screened = screen(entry, this.#context.screened, maxEventBytes);
      if (screened.contentTypeId === undefined || !allowed.has(screened.contentTypeId)) continue;
      frames.push((screened.frame ??= textFrame(eventEnvelope(entry.offset, entry.payload))));
    }
    return frames;
  }

  #count(result: ReplayResult, replayed: number): void {
    const { metrics, log } = this.#context;
    if (result.complete) {
      metrics.replays.inc({ outcome: 'complete' });
      metrics.replayedEvents.inc(replayed);
      return;
    }
    metrics.replays.inc({ outcome: result.gap });
    const fields = { user: this.#userId, gap: result.gap };
    log.log(
      'info',
      `replay ${result.gap}`,
      fields,
      'replay incomplete: client told recovered false',
    );
  }
}
