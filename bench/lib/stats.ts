/**
 * Statistics for the benchmark: percentiles of one run, medians and spread over several runs,
 * and the proxy − direct / proxy ÷ baseline arithmetic the results table is made of.
 * Pure functions: `test/bench/stats.test.ts` checks them.
 */

/**
 * Nearest-rank percentile (the smallest value with at least p % of the samples at or below it),
 * the definition HdrHistogram and wrk report; no interpolation between samples.
 *
 * @example percentile([1, 2, 3, 4], 50) // 2
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return percentileSorted(sorted, p);
}

/** As {@link percentile} on values already sorted ascending (no copy). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    min: sorted.length === 0 ? Number.NaN : (sorted[0] as number),
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
  };
}

/** Median of several runs' figures (mean of the middle two for an even count); NaNs are ignored. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1
    ? (finite[mid] as number)
    : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
}

/** A figure over several runs: the median we report and the min–max spread around it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => !Number.isNaN(v));
  return {
    median: median(finite),
    min: finite.length === 0 ? Number.NaN : Math.min(...finite),
    max: finite.length === 0 ? Number.NaN : Math.max(...finite),
    runs: finite.length,
  };
}

/**
 * `a ÷ b`, or NaN when either side is missing or b is 0: a ratio against a baseline that was not
 * measured is absent, never 0 or Infinity.
 */
export function ratio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return Number.NaN;
  return a / b;
}

/**
 * The added cost of a proxy at one percentile, per run: `proxy[i] − direct[i]` for runs measured
 * in the same round (so machine drift between rounds cancels), then the spread over rounds.
 */
export function addedPerRound(proxy: readonly number[], direct: readonly number[]): Spread {
  const diffs: number[] = [];
  for (let i = 0; i < Math.min(proxy.length, direct.length); i++)
    diffs.push((proxy[i] as number) - (direct[i] as number));
  return spread(diffs);
}

/** Fraction of failed requests, 0 when nothing was sent. */
export function errorRate(errors: number, total: number): number {
  return total === 0 ? 0 : errors / total;
}

/** Relative growth from `from` to `to` (0.05 = 5 %). */
export function growth(from: number, to: number): number {
  return ratio(to - from, from);
}

/** Milliseconds for a table cell: µs below 1 ms, else ms; "—" for a missing value. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const abs = Math.abs(ms);
  if (abs < 1) return `${Math.round(ms * 1000)} µs`;
  if (abs < 100) return `${ms.toFixed(2)} ms`;
  return `${Math.round(ms)} ms`;
}

export function fmtNum(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×` : '—';
}

export function fmtPct(f: number, digits = 1): string {
  return Number.isFinite(f) ? `${(f * 100).toFixed(digits)} %` : '—';
}

/** "median (min–max)" with a formatter, or just the median for a single run. */
export function fmtSpread(s: Spread, fmt: (v: number) => string): string {
  if (s.runs <= 1 || s.min === s.max) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min)} – ${fmt(s.max)})`;
}
