/** Small numeric helpers for the benchmark: percentiles and lengths of interval unions. */

/** A closed time interval in ms since the epoch; `end < start` counts as empty. */
export interface Interval {
  start: number;
  end: number;
}

/**
 * The `p`-th percentile (0–100) by the nearest-rank method; `undefined` for no values.
 * Nearest-rank keeps the figure an observed value, which matters for p99 of a few
 * hundred samples.
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The arithmetic mean; `undefined` for no values. */
export function mean(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** The median of a few samples (e.g. start-up runs); `undefined` for none. */
export function median(values: readonly number[]): number | undefined {
  return percentile(values, 50);
}

/**
 * Total length of the union of `intervals` after clipping each to `window`:
 * overlapping waits on the fakes (a draft sent while the model streams) count once.
 */
export function unionLength(intervals: readonly Interval[], window: Interval): number {
  const clipped = intervals
    .map((i) => ({ start: Math.max(i.start, window.start), end: Math.min(i.end, window.end) }))
    .filter((i) => i.end > i.start)
    .sort((a, b) => a.start - b.start);
  let total = 0;
  let cursor = -Infinity;
  for (const i of clipped) {
    const start = Math.max(i.start, cursor);
    if (i.end > start) total += i.end - start;
    cursor = Math.max(cursor, i.end);
  }
  return total;
}

/** A deterministic PRNG (mulberry32) so two runs drive the same pacing. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
