/**
 * How many live connections each user holds, against --max-connections-per-user. Only users with
 * at least one live connection have an entry, so the map is as large as the users online.
 */
export class PerUserCounts {
  readonly #max: number;
  readonly #counts = new Map<string, number>();

  /** `max` 0 means no limit. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Live connections the user holds now. */
  countOf(userId: string): number {
    return this.#counts.get(userId) ?? 0;
  }

  /** Counts one more connection for the user, unless that would pass the limit (then false). */
  tryAdd(userId: string): boolean {
    const count = this.countOf(userId);
    if (this.#max > 0 && count >= this.#max) return false;
    this.#counts.set(userId, count + 1);
    return true;
  }

  /** Gives back one connection counted by tryAdd. */
  remove(userId: string): void {
    const left = this.countOf(userId) - 1;
    if (left <= 0) this.#counts.delete(userId);
    else this.#counts.set(userId, left);
  }
}
