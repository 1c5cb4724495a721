/**
 * Summaries the benchmarks report: every figure is the median of several runs with the min and
 * max beside it, and latencies are percentiles of the raw samples (nearest-rank, no
 * interpolation, so a p99 is always a latency that really happened).
 */

/** One figure over several runs. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  /** The value of each run, in run order. */
  runs: number[];
}

/** Nearest-rank percentile of `values` (0 < p <= 100); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function figure(runs: readonly number[]): Figure {
  return {
    median: median(runs),
    min: runs.length ? Math.min(...runs) : Number.NaN,
    max: runs.length ? Math.max(...runs) : Number.NaN,
    runs: [...runs],
  };
}

/** The same numeric field of every run, as one Figure. */
export function figureOf<T>(runs: readonly T[], pick: (run: T) => number): Figure {
  return figure(runs.map(pick));
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function latencySummary(samplesMs: readonly number[]): LatencySummary {
  return {
    samples: samplesMs.length,
    p50: percentile(samplesMs, 50),
    p95: percentile(samplesMs, 95),
    p99: percentile(samplesMs, 99),
    max: samplesMs.length ? Math.max(...samplesMs) : Number.NaN,
  };
}

/** Adds `b`'s counts into `a` (per-operation call counts, action histograms). */
export function addCounts(a: Record<string, number>, b: Record<string, number>): void {
  for (const [key, n] of Object.entries(b)) a[key] = (a[key] ?? 0) + n;
}

export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
