/**
 * Short-lived snapshots of users and their permissions, shared by every connection of a process:
 * a user with many tabs, or thousands of clients reconnecting after a deploy, costs the database
 * one user read and one permission read per user per refresh interval, not per connection.
 *
 * A snapshot lives for the permission-refresh interval and is dropped early by a control message
 * naming its user, and replaced by every re-check (src/server/live-permissions.ts). Within that
 * interval a connection may be admitted on what the user was when the snapshot was taken; the
 * re-check that follows applies whatever changed since, as it does for connections already open.
 * Lookups of one user that overlap share one read; a user that does not exist is never cached.
 */
import type { DjangoStore, DjangoUser } from '../django/store.js';
import type { PkValue } from '../django/fields.js';
import { keyText } from '../django/values.js';

export interface UserSnapshot {
  readonly user: DjangoUser;
  /** Read when first asked for, then shared: a refused token never costs a permission read. */
  contentTypeIds(): Promise<ReadonlySet<number>>;
}

export interface UserSnapshots {
  /** The unexpired snapshot of the user whose lookup field (what tokens name) is `lookup`. */
  cached(lookup: PkValue): UserSnapshot | undefined;
  /**
   * Reads that user from the database, or null when there is none, and caches the snapshot.
   * Overlapping reads of one user are one.
   */
  read(lookup: PkValue): Promise<UserSnapshot | null>;
  /**
   * Reads these users (by pk) in one user query and one permission query; the snapshots of those
   * who have one are replaced.
   */
  readMany(pks: readonly string[]): Promise<Map<string, { user: DjangoUser; ids: Set<number> }>>;
  /** Drops the snapshots of these users (by pk), or of everyone. */
  forget(pks: readonly string[] | 'all'): void;
  /** Stops the sweeping of expired snapshots. */
  close(): void;
  /** Where forget() has got to, for changedSince() once a read is done. */
  mark(): number;
  /** Whether forget() named this user (by pk), or everyone, since `mark`. */
  changedSince(mark: number, pk: string): boolean;
}

/** Users whose last forget() is remembered; past it, any forget() counts as everyone's. */
const MAX_FORGOTTEN = 10_000;

type Store = Pick<
  DjangoStore,
  'findUser' | 'findUsersByPk' | 'contentTypeIds' | 'contentTypeIdsOf'
>;

/** Distinct permission sets seen since the last sweep; past it, sets are no longer shared. */
const MAX_SHARED_SETS = 10_000;

/** `ttlMs` 0 caches nothing: every lookup reads the database, as without snapshots. */
export function createUserSnapshots(
  store: Store,
  ttlMs: number,
  now: () => number = performance.now.bind(performance),
): UserSnapshots {
  /**
   * One snapshot, kept small: every user authenticated in the last interval has one. No closure
   * per entry, the read's promise dropped once it settles, and permission sets shared between
   * users who have the same (most users of a site share a few).
   */
  class Entry implements UserSnapshot {
    readonly user: DjangoUser;
    readonly expiresAt: number;
    #ids: ReadonlySet<number> | Promise<ReadonlySet<number>> | undefined;

    constructor(user: DjangoUser, ids?: ReadonlySet<number>) {
      this.user = user;
      this.expiresAt = now() + ttlMs;
      this.#ids = ids === undefined ? undefined : shared(ids);
    }

    contentTypeIds(): Promise<ReadonlySet<number>> {
      const ids = this.#ids;
      if (ids === undefined) {
        const reading = store.contentTypeIds(this.user).then((read) => (this.#ids = shared(read)));
        // A failed read is not kept: the next caller tries again.
        reading.catch(() => (this.#ids = undefined));
        this.#ids = reading;
        return reading;
      }
      return ids instanceof Promise ? ids : Promise.resolve(ids);
    }
  }

  /** By lookup value, as text. */
  const entries = new Map<string, Entry>();
  /**
   * pk -> lookup text, to forget by pk, for the users whose lookup differs from their pk
   * (SESAME_TOKEN_FIELD-like setups); the others are found under their pk itself.
   */
  const lookups = new Map<string, string>();
  const sets = new Map<string, ReadonlySet<number>>();
  const reading = new Map<string, Promise<UserSnapshot | null>>();
  const sweeper = ttlMs > 0 ? setInterval(sweep, ttlMs).unref() : undefined;
  /**
   * Moves on with every forget(): a read that began before a change was announced must not
   * cache what it read, nor be shared with lookups made after it.
   */
  let generation = 0;
  /** The generation at which each user, or everyone, was last forgotten. */
  const forgottenAt = new Map<string, number>();
  let everyoneForgottenAt = 0;

  /** The one set of these ids shared by the snapshots. */
  function shared(ids: ReadonlySet<number>): ReadonlySet<number> {
    const key = [...ids].sort((a, b) => a - b).join(',');
    const known = sets.get(key);
    if (known !== undefined) return known;
    if (sets.size < MAX_SHARED_SETS) sets.set(key, ids);
    return ids;
  }

  /** The snapshot of the user with this pk, under whichever key it is kept. */
  function entryOf(pk: string): [string, Entry] | undefined {
    const key = lookups.get(pk) ?? pk;
    const entry = entries.get(key);
    // Another user's lookup value may read like this pk: only this user's own snapshot counts.
    return entry !== undefined && entry.user.pk === pk ? [key, entry] : undefined;
  }

  function remember(key: string, entry: Entry, readSince: number): void {
    if (ttlMs === 0 || readSince !== generation) return;
    entries.set(key, entry);
    if (key !== entry.user.pk) lookups.set(entry.user.pk, key);
    else lookups.delete(key);
  }

  function drop(key: string, entry: Entry): void {
    entries.delete(key);
    lookups.delete(entry.user.pk);
  }

  /**
   * Expired snapshots go once per ttl, in one pass (no timer per entry), so that a snapshot
   * costs memory for its interval only, whether or not anyone authenticates afterwards.
   */
  function sweep(): void {
    const time = now();
    for (const [key, entry] of entries) if (entry.expiresAt <= time) drop(key, entry);
    // The sets of the snapshots left stay theirs; sharing starts again from those made now.
    sets.clear();
  }

  async function read(key: string, lookup: PkValue): Promise<UserSnapshot | null> {
    const started = generation;
    const user = await store.findUser(lookup);
    if (user === null) return null;
    const entry = new Entry(user);
    remember(key, entry, started);
    return entry;
  }

  return {
    cached(lookup) {
      const entry = entries.get(keyText(lookup));
      return entry !== undefined && entry.expiresAt > now() ? entry : undefined;
    },

    read(lookup) {
      const key = keyText(lookup);
      const inFlight = reading.get(key);
      if (inFlight !== undefined) return inFlight;
      const pending = read(key, lookup).finally(() => {
        if (reading.get(key) === pending) reading.delete(key);
      });
      reading.set(key, pending);
      return pending;
    },

    async readMany(pks) {
      const started = generation;
      const users = await store.findUsersByPk(pks);
      const ids = await store.contentTypeIdsOf(users);
      const result = new Map<string, { user: DjangoUser; ids: Set<number> }>();
      for (const user of users) {
        const userIds = ids.get(user.pk) ?? new Set<number>();
        result.set(user.pk, { user, ids: userIds });
        // A re-check refreshes the snapshot of a user who has one, and makes none: live users'
        // snapshots would otherwise be kept for as long as they stay connected.
        const found = entryOf(user.pk);
        if (found !== undefined) remember(found[0], new Entry(user, userIds), started);
      }
      return result;
    },

    forget(pks) {
      generation++;
      reading.clear();
      if (pks === 'all' || forgottenAt.size + pks.length > MAX_FORGOTTEN) {
        everyoneForgottenAt = generation;
        forgottenAt.clear();
      } else {
        for (const pk of pks) forgottenAt.set(pk, generation);
      }
      if (pks === 'all') {
        entries.clear();
        lookups.clear();
        return;
      }
      for (const pk of pks) {
        const found = entryOf(pk);
        if (found !== undefined) drop(...found);
      }
    },

    close() {
      clearInterval(sweeper);
    },

    mark: () => generation,

    changedSince(mark, pk) {
      return everyoneForgottenAt > mark || (forgottenAt.get(pk) ?? 0) > mark;
    },
  };
}
