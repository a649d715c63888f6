/**
 * Keeps open connections true to Django's current permissions. Two triggers:
 *
 * - refresh: every --permissions-refresh seconds each live user of this process is read again,
 *   in batches (one call to the directory per batch, a few queries for hundreds of users) spread
 *   evenly over the interval, so the database sees a trickle and never a burst;
 * - control: a control message (./control-message.ts) names users, groups or everyone; the live
 *   ones among them are read again at once. Users with no connection here cost no query.
 *
 * A re-read user who no longer exists, is inactive, or whose credential stamp moved (a new
 * password) loses every connection with 1008 access revoked, as does a connection whose session
 * ended (logged out); a changed permission set is applied in place. Every re-check goes through
 * one queue, one batch at a time, so two reads of one user can never be applied out of order,
 * and the database sees one re-check query at a time.
 */
import type { UserDirectory, UserState } from '../auth/authenticator.js';
import { chunks } from '../chunks.js';
import type { Logger, LogLimiter } from '../log.js';
import type { Metrics } from '../metrics.js';
import { readControlMessage, type ControlMessage } from './control-message.js';
import type { LiveUsers } from './live-users.js';

/** What a re-check needs of a live connection. */
export interface RecheckedConnection {
  readonly credentialStamp: string | undefined;
  /** The server-side session it rests on (Principal.session). */
  readonly session?: string | undefined;
  updateContentTypes(contentTypeIds: ReadonlySet<number>): boolean;
  revoke(): void;
}

export type RevocationReason = 'inactive' | 'deleted' | 'credentials_changed' | 'session_ended';

export interface LivePermissionsOptions {
  /** Seconds between two re-checks of every live user; 0: never on a schedule. */
  readonly refreshSeconds: number;
  /** How long a control message waits for others to join its batch. Default 20 ms. */
  readonly coalesceMs?: number;
}

export interface LivePermissionsDependencies {
  readonly directory: UserDirectory;
  readonly users: LiveUsers<RecheckedConnection>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Bad control messages and failing re-checks come in floods: one line per kind per interval. */
  readonly log: LogLimiter;
}

export interface LivePermissions {
  /** Acts on one control message's text (never throws: a bad one is counted and logged). */
  onControl(text: string): void;
  /**
   * The control channel lost messages (it reconnected after an outage): every live user is read
   * again, as on `{"type":"all"}`, so that a change announced meanwhile applies now rather than
   * at the next scheduled round.
   */
  catchUp(): void;
  /** Resolves when every re-check asked for so far has been applied. */
  settled(): Promise<void>;
  /** Where control messages have got to: taken when a connection starts authenticating. */
  mark(): number;
  /**
   * A connection of `userId` went live after authenticating from `mark` on: if a control message
   * named its user (or a group, or everyone) meanwhile, what the authenticator read may be what
   * changed, and the re-check that message caused did not include it. It is re-checked now.
   */
  joined(userId: string, mark: number): void;
  stop(): void;
}

const COALESCE_MS = 20;
/** Users whose last naming by a control message is remembered; past it, all count as named. */
const MAX_NAMED = 10_000;

export function revocationReason(
  state: UserState | undefined,
  connection: RecheckedConnection,
  endedSessions: ReadonlySet<string> = new Set(),
): RevocationReason | undefined {
  if (state === undefined) return 'deleted';
  if (!state.isActive) return 'inactive';
  const stamp = connection.credentialStamp;
  if (stamp !== undefined && !state.credentialStamps.has(stamp)) return 'credentials_changed';
  const { session } = connection;
  if (session !== undefined && endedSessions.has(session)) return 'session_ended';
  return undefined;
}

export function createLivePermissions(
  options: LivePermissionsOptions,
  deps: LivePermissionsDependencies,
): LivePermissions {
  const { directory, users, metrics, logger, log } = deps;
  const refreshMs = options.refreshSeconds * 1000;
  const coalesceMs = options.coalesceMs ?? COALESCE_MS;
  let stopped = false;
  /** The one queue every re-check goes through. */
  let queue: Promise<void> = Promise.resolve();
  const urgent = { users: new Set<string>(), groups: new Set<string>(), all: false };
  let flushTimer: NodeJS.Timeout | undefined;
  /** The re-check the waiting control messages will make, once their timer fires. */
  let pendingFlush: Promise<void> = Promise.resolve();
  let roundTimer: NodeJS.Timeout | undefined;

  function enqueue(job: () => Promise<void>): Promise<void> {
    // The failures a re-check expects are caught where they happen; this fence keeps any other
    // from stopping the scheduled rounds or becoming an unhandled rejection.
    queue = queue.then(job).catch((error: unknown) => fault(error, {}));
    return queue;
  }

  /** Something that should not fail did: a failed re-check too, logged at error. */
  function fault(error: unknown, fields: Record<string, string>): void {
    const message = 're-check failed unexpectedly; the other users and the next rounds go on';
    failed(error, fields, message, 'error');
  }

  /** Reads these users again (those still live) and applies what changed, in batches. */
  async function recheck(userIds: readonly string[], trigger: 'refresh' | 'control') {
    for (const batch of chunks(userIds, directory.batchSize)) {
      const live = batch.filter((id) => users.has(id));
      if (stopped || live.length === 0) continue;
      let states: ReadonlyMap<string, UserState>;
      let ended: ReadonlySet<string>;
      try {
        states = await directory.readUsers(live);
        ended = await endedSessionsOf(live);
      } catch (error) {
        failed(error, { users: live.length }, 'cannot re-check live users; connections kept');
        continue;
      }
      metrics.permissionRechecks.inc({ trigger }, live.length);
      for (const id of live) {
        try {
          apply(id, states.get(id), ended);
        } catch (error) {
          // One user's fault must not keep the rest of the batch from being applied.
          fault(error, { user: id });
        }
      }
    }
  }

  /** Which sessions of these users' connections have ended; none when no scheme has sessions. */
  async function endedSessionsOf(userIds: readonly string[]): Promise<ReadonlySet<string>> {
    if (directory.endedSessions === undefined) return new Set();
    const sessions: string[] = [];
    for (const id of userIds) {
      for (const { session } of users.connectionsOf(id)) {
        if (session !== undefined) sessions.push(session);
      }
    }
    return sessions.length === 0 ? new Set() : directory.endedSessions(sessions);
  }

  /** A re-check that could not read or apply: counted, logged once per interval, nobody closed. */
  function failed(
    error: unknown,
    fields: Record<string, number | string>,
    message: string,
    level: 'warn' | 'error' = 'warn',
  ): void {
    metrics.permissionRecheckFailures.inc();
    log.log(level, `recheck ${level}`, { ...fields, err: (error as Error).message }, message);
  }

  function apply(
    userId: string,
    state: UserState | undefined,
    endedSessions: ReadonlySet<string>,
  ): void {
    let changed = false;
    for (const connection of users.connectionsOf(userId)) {
      const reason = revocationReason(state, connection, endedSessions);
      if (reason !== undefined) {
        metrics.revocations.inc({ reason });
        logger.info({ user: userId, reason }, 'access revoked');
        connection.revoke();
      } else if (connection.updateContentTypes(state!.contentTypeIds)) {
        changed = true;
      }
    }
    if (changed) {
      metrics.permissionChanges.inc();
      logger.debug(
        { user: userId, contentTypes: state!.contentTypeIds.size },
        'permissions changed',
      );
    }
  }

  /** What control messages asked for since the last flush, as one re-check. */
  async function flush(): Promise<void> {
    flushTimer = undefined;
    const named = [...urgent.users];
    const groups = [...urgent.groups];
    const all = urgent.all;
    urgent.users.clear();
    urgent.groups.clear();
    urgent.all = false;
    if (all) return recheck(users.userIds(), 'control');
    const targets = new Set(named);
    if (groups.length > 0 && users.size > 0) {
      for (const batch of chunks(users.userIds(), directory.batchSize)) {
        try {
          for (const id of await directory.groupMembers(groups, batch)) targets.add(id);
        } catch (error) {
          failed(error, { groups: groups.length }, 'cannot read group members; connections kept');
        }
      }
    }
    await recheck([...targets], 'control');
  }

  /** Counts control messages; each user's last naming, and the last naming of everyone. */
  const named = { generation: 0, users: new Map<string, number>(), everyone: 0 };

  function remember(message: ControlMessage): void {
    const generation = ++named.generation;
    if (message.type !== 'users' || named.users.size + message.ids.length > MAX_NAMED) {
      named.everyone = generation;
      named.users.clear();
    } else {
      for (const id of message.ids) named.users.set(id, generation);
    }
  }

  function schedule(): void {
    const pending = urgent.all || urgent.users.size > 0 || urgent.groups.size > 0;
    if (pending && flushTimer === undefined && !stopped) {
      pendingFlush = new Promise((resolve) => {
        flushTimer = setTimeout(() => resolve(enqueue(flush)), coalesceMs);
      });
    }
  }

  function accept(message: ControlMessage): void {
    remember(message);
    if (message.type === 'all') {
      directory.forget('all');
      urgent.all = true;
    } else if (message.type === 'users') {
      directory.forget(message.ids);
      for (const id of message.ids) if (users.has(id)) urgent.users.add(id);
    } else {
      // Who is in the group is known only to the database: no snapshot can be trusted now.
      directory.forget('all');
      if (users.size > 0) for (const id of message.ids) urgent.groups.add(id);
    }
    schedule();
  }

  /**
   * One round: every user live when it starts, batch after batch, spread over the interval.
   * Rounds keep a fixed cadence from `started`, so the time the reads take never adds up: a
   * user is re-read at most an interval (and one read) after the last time.
   */
  function startRound(started = performance.now()): void {
    if (stopped) return;
    const batches = chunks(users.userIds(), directory.batchSize);
    const spacing = refreshMs / Math.max(1, batches.length);
    let next = 0;
    const later = (run: () => void, dueAt: number): void => {
      roundTimer = setTimeout(run, Math.max(0, dueAt - performance.now()));
      roundTimer.unref();
    };
    const nextRound = (): void => {
      // The last batch was due when the next round is: it begins then, unless the reads ran
      // more than a spacing late (a slow database), when it begins now rather than catch up.
      const due = started + refreshMs;
      const now = performance.now();
      startRound(now - due > spacing ? now : due);
    };
    const step = (): void => {
      roundTimer = undefined;
      if (stopped) return;
      if (next >= batches.length) return nextRound();
      const batch = batches[next++]!;
      void enqueue(() => recheck(batch, 'refresh')).then(() => {
        if (stopped) return;
        if (next >= batches.length) return nextRound();
        later(step, started + (next + 1) * spacing);
      });
    };
    // The first batch of a round waits a spacing too: users who just connected were just read.
    later(step, started + spacing);
  }

  if (refreshMs > 0) startRound();

  function onControl(text: string): void {
    const read = readControlMessage(text);
    if ('dropped' in read) {
      metrics.controlMessages.inc({ outcome: read.dropped });
      const fields = { reason: read.dropped, detail: read.detail };
      log.log('warn', `control ${read.dropped}`, fields, 'control message dropped');
      return;
    }
    metrics.controlMessages.inc({ outcome: 'applied' });
    accept(read.message);
  }

  return {
    onControl,
    catchUp() {
      if (stopped) return;
      logger.info(
        { users: users.size },
        'control messages may have been missed; re-checking every live user',
      );
      accept({ type: 'all' });
    },
    mark: () => named.generation,
    joined(userId, mark) {
      if (named.everyone <= mark && (named.users.get(userId) ?? 0) <= mark) return;
      urgent.users.add(userId);
      schedule();
    },
    async settled() {
      await pendingFlush;
      await enqueue(async () => undefined);
    },
    stop() {
      stopped = true;
      clearTimeout(flushTimer);
      pendingFlush = Promise.resolve();
      clearTimeout(roundTimer);
    },
  };
}
