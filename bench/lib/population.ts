/**
 * Who may see what in the benchmark's Django database, decided here once and written to the
 * database by database.ts. The load generator uses the same table to know how many deliveries
 * each event must cause, so every server's output is checked, not only timed.
 *
 * The shape imitates the guide's use case (admin notifications): twenty models, staff in a few
 * overlapping groups, a handful of superusers, and events spread evenly over the models, so an
 * event reaches anywhere from a few percent to about two thirds of the connected users.
 */

export const MODEL_COUNT = 20;

export interface GroupSpec {
  readonly name: string;
  /** Share of users in the group. */
  readonly share: number;
  /** Indexes of the bench models the group may see. */
  readonly models: readonly number[];
  /** The permission it holds on them: view (the usual) or change (also grants visibility). */
  readonly action: 'view' | 'change';
}

export const GROUPS: readonly GroupSpec[] = [
  { name: 'staff', share: 0.5, models: [0, 1, 2, 3, 4], action: 'view' },
  { name: 'editors', share: 0.35, models: [3, 4, 5, 6, 7, 8], action: 'view' },
  { name: 'support', share: 0.25, models: [9, 10, 11], action: 'view' },
  { name: 'sales', share: 0.2, models: [12, 13, 14], action: 'view' },
  { name: 'catalog', share: 0.15, models: [0, 5, 15, 16], action: 'change' },
  { name: 'finance', share: 0.1, models: [17, 18], action: 'view' },
  { name: 'operations', share: 0.08, models: [1, 9, 12, 19], action: 'view' },
  { name: 'auditors', share: 0.05, models: [...Array(MODEL_COUNT).keys()], action: 'view' },
];

export const SUPERUSER_SHARE = 0.01;

/**
 * Probes tell the load generator that a connection is live (authenticated and registered): each
 * block of PROBE_SHARD_SIZE consecutive users may view its own probe model, so a probe reaches
 * one block only and probing stays cheap for every server while a storm is under way.
 */
export const PROBE_SHARD_SIZE = 250;

export function probeShardCount(users: number): number {
  return Math.ceil(users / PROBE_SHARD_SIZE);
}

export function probeShardOf(userIndex: number): number {
  return Math.floor(userIndex / PROBE_SHARD_SIZE);
}

export function probeModel(shard: number): string {
  return `probe${String(shard).padStart(3, '0')}`;
}

export interface BenchUser {
  readonly username: string;
  readonly superuser: boolean;
  /** Indexes into GROUPS. */
  readonly groups: readonly number[];
  /** Bit i set: the user may see bench model i. */
  readonly visible: number;
}

/** A small seeded generator, so every run builds the same population. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function buildPopulation(count: number, seed = 1): BenchUser[] {
  const random = seededRandom(seed);
  const all = (1 << MODEL_COUNT) - 1;
  const users: BenchUser[] = [];
  for (let i = 0; i < count; i++) {
    const superuser = random() < SUPERUSER_SHARE;
    const groups: number[] = [];
    let visible = 0;
    GROUPS.forEach((group, index) => {
      if (random() >= group.share) return;
      groups.push(index);
      for (const model of group.models) visible |= 1 << model;
    });
    users.push({
      username: `bench${String(i + 1).padStart(6, '0')}`,
      superuser,
      groups,
      visible: superuser ? all : visible,
    });
  }
  return users;
}

/** How many of `users` may see each bench model. */
export function audienceSizes(users: readonly BenchUser[]): number[] {
  const sizes = new Array<number>(MODEL_COUNT).fill(0);
  for (const user of users) {
    for (let model = 0; model < MODEL_COUNT; model++)
      if (user.visible & (1 << model)) sizes[model]!++;
  }
  return sizes;
}
