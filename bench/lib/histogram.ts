/**
 * Latency histogram in microseconds: exact below 100 µs, then buckets 1% wide up to 1000 s.
 * Client processes fill one each; the orchestrator sums them bucket by bucket.
 */
const LINEAR = 100;
const GROWTH = Math.log(1.01);
export const BUCKETS = LINEAR + Math.ceil(Math.log(1e9 / LINEAR) / GROWTH) + 1;

export function bucketOf(micros: number): number {
  if (micros < LINEAR) return Math.max(0, Math.floor(micros));
  return Math.min(BUCKETS - 1, LINEAR + Math.floor(Math.log(micros / LINEAR) / GROWTH));
}

/** The middle of a bucket, in microseconds. */
export function valueOf(bucket: number): number {
  if (bucket < LINEAR) return bucket + 0.5;
  return LINEAR * Math.exp((bucket - LINEAR + 0.5) * GROWTH);
}

export class Histogram {
  readonly counts: Float64Array;
  count = 0;
  max = 0;

  constructor(counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(BUCKETS);
    if (counts) for (const value of counts) this.count += value;
  }

  record(micros: number): void {
    this.counts[bucketOf(micros)]!++;
    this.count++;
    if (micros > this.max) this.max = micros;
  }

  add(other: { counts: Float64Array; max: number }): void {
    for (let i = 0; i < BUCKETS; i++) {
      const value = other.counts[i]!;
      this.counts[i]! += value;
      this.count += value;
    }
    if (other.max > this.max) this.max = other.max;
  }

  /** The value below which `fraction` of the samples lie (NaN when empty). */
  quantile(fraction: number): number {
    if (this.count === 0) return NaN;
    const rank = fraction * this.count;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank && this.counts[i]! > 0) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
  }
}
