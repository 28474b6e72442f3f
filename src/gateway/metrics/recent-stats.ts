/*
 * What the JSON stats and the dashboard show beyond Prometheus counters, measured, bounded:
 * exact percentiles over the most recent requests (a ring of the last `window` durations), a
 * per-10-second series for the last 15 minutes, and the latest security events.
 */

/** One recent security event as the dashboard shows it. */
export interface SecurityEventView {
  at: string;
  event: string;
  ip: string;
  path: string | undefined;
  status: number;
  code: string | undefined;
  userAgent: string | undefined;
}

export interface SeriesPoint {
  /** Start of the 10-second bucket (ISO time). */
  t: string;
  requests: number;
  errors: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  latency_p99_ms: number | null;
  ttft_p50_ms: number | null;
}

const BUCKET_MS = 10_000;
const BUCKETS = 90;
const SAMPLES_PER_BUCKET = 2000;

interface Bucket {
  start: number;
  requests: number;
  errors: number;
  durations: number[];
  ttfts: number[];
}

class Ring {
  readonly #values: Float64Array;
  #next = 0;
  #size = 0;
  constructor(capacity: number) {
    this.#values = new Float64Array(capacity);
  }
  push(value: number): void {
    this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.#values.length;
    if (this.#size < this.#values.length) this.#size++;
  }
  sorted(): Float64Array {
    return this.#values.slice(0, this.#size).sort();
  }
}

/** Nearest-rank percentile of sorted values; null when there are none (unmeasured is absent). */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[rank] as number) * 1000) / 1000;
}

export class RecentStats {
  readonly #durations: Ring;
  readonly #ttfts: Ring;
  readonly #buckets: Bucket[] = [];
  readonly #events: SecurityEventView[] = [];
  readonly #maxEvents: number;

  constructor(options: { window?: number; maxEvents?: number } = {}) {
    this.#durations = new Ring(options.window ?? 10_000);
    this.#ttfts = new Ring(options.window ?? 10_000);
    this.#maxEvents = options.maxEvents ?? 50;
  }

  record(now: number, durationMs: number, ttftMs: number | undefined, status: number): void {
    this.#durations.push(durationMs);
    if (ttftMs !== undefined) this.#ttfts.push(ttftMs);
    const bucket = this.#bucket(now);
    bucket.requests++;
    if (status >= 500) bucket.errors++;
    if (bucket.durations.length < SAMPLES_PER_BUCKET) bucket.durations.push(durationMs);
    if (ttftMs !== undefined && bucket.ttfts.length < SAMPLES_PER_BUCKET) bucket.ttfts.push(ttftMs);
  }

  securityEvent(event: SecurityEventView): void {
    this.#events.push(event);
    if (this.#events.length > this.#maxEvents) this.#events.shift();
  }

  latency(): { p50: number | null; p95: number | null; p99: number | null } {
    const sorted = this.#durations.sorted();
    return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  }

  ttft(): { p50: number | null; p95: number | null; p99: number | null } {
    const sorted = this.#ttfts.sorted();
    return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  }

  /** Oldest first; buckets without requests are included (a gap is information). */
  series(now: number): SeriesPoint[] {
    const newest = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const byStart = new Map(this.#buckets.map((b) => [b.start, b]));
    const points: SeriesPoint[] = [];
    const first = this.#buckets[0]?.start ?? newest;
    for (
      let start = Math.max(first, newest - (BUCKETS - 1) * BUCKET_MS);
      start <= newest;
      start += BUCKET_MS
    ) {
      const b = byStart.get(start);
      const d = b === undefined ? [] : [...b.durations].sort((x, y) => x - y);
      const t = b === undefined ? [] : [...b.ttfts].sort((x, y) => x - y);
      points.push({
        t: new Date(start).toISOString(),
        requests: b?.requests ?? 0,
        errors: b?.errors ?? 0,
        latency_p50_ms: percentile(d, 50),
        latency_p95_ms: percentile(d, 95),
        latency_p99_ms: percentile(d, 99),
        ttft_p50_ms: percentile(t, 50),
      });
    }
    return points;
  }

  events(): SecurityEventView[] {
    return [...this.#events].reverse();
  }

  #bucket(now: number): Bucket {
    const start = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const last = this.#buckets[this.#buckets.length - 1];
    if (last !== undefined && last.start === start) return last;
    const bucket: Bucket = { start, requests: 0, errors: 0, durations: [], ttfts: [] };
    this.#buckets.push(bucket);
    while (this.#buckets.length > 0 && (this.#buckets[0] as Bucket).start <= start - BUCKETS * BUCKET_MS)
      this.#buckets.shift();
    return bucket;
  }
}
