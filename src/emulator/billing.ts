import type { ListPodBillingResponse, PodBillingRecord } from '../runpod/schemas.js';

/*
 * Per-second pod billing for the emulator, kept in hour buckets so that `GET /v2/billing/pods`
 * can answer by hour or day. RunPod bills per second at the pod's `cost` rate (docs/runpod-contract.md).
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export class PodLedger {
  /** podId → hour start (ms) → USD. */
  readonly #hours = new Map<string, Map<number, number>>();

  /** Bills `usdPerHour` for [fromMs, toMs), split at hour boundaries. */
  accrue(podId: string, usdPerHour: number, fromMs: number, toMs: number): void {
    if (usdPerHour <= 0 || toMs <= fromMs) return;
    let hours = this.#hours.get(podId);
    if (hours === undefined) {
      hours = new Map();
      this.#hours.set(podId, hours);
    }
    let t = fromMs;
    while (t < toMs) {
      const bucket = Math.floor(t / HOUR) * HOUR;
      const end = Math.min(toMs, bucket + HOUR);
      hours.set(bucket, (hours.get(bucket) ?? 0) + (usdPerHour * (end - t)) / HOUR);
      t = end;
    }
  }

  /** Total billed for one pod so far. */
  total(podId: string): number {
    let sum = 0;
    for (const usd of this.#hours.get(podId)?.values() ?? []) sum += usd;
    return sum;
  }

  /** The `ListPodBillingResponse` for a window (defaults as the spec says: last 30 days to now). */
  report(query: {
    podId?: string;
    bucketSize: 'hour' | 'day';
    startMs?: number;
    endMs?: number;
    now: number;
  }): ListPodBillingResponse {
    const size = query.bucketSize === 'hour' ? HOUR : DAY;
    // The spec snaps the window outward to bucket boundaries.
    const start = Math.floor((query.startMs ?? query.now - 30 * DAY) / size) * size;
    const end = Math.ceil((query.endMs ?? query.now + 1) / size) * size;
    const records: PodBillingRecord[] = [];
    const pods = query.podId === undefined ? [...this.#hours.keys()] : [query.podId];
    for (const podId of pods) {
      const buckets = new Map<number, number>();
      for (const [hour, usd] of this.#hours.get(podId) ?? []) {
        if (hour < start || hour >= end) continue;
        const bucket = Math.floor(hour / size) * size;
        buckets.set(bucket, (buckets.get(bucket) ?? 0) + usd);
      }
      for (const [bucket, usd] of [...buckets].sort((a, b) => a[0] - b[0])) {
        const amount = round(usd);
        records.push({
          startTime: iso(bucket),
          endTime: iso(bucket + size),
          podId,
          totalAmount: amount,
          gpuAmount: amount,
          cpuAmount: 0,
          diskAmount: 0,
        });
      }
    }
    const total = round(records.reduce((s, r) => s + r.totalAmount, 0));
    return {
      records,
      metadata: {
        query: {
          startTime: iso(start),
          endTime: iso(end),
          bucketSize: query.bucketSize,
          podId: query.podId ?? null,
        },
        recordCount: records.length,
        uniquePodCount: new Set(records.map((r) => r.podId)).size,
        totals: { totalAmount: total, gpuAmount: total, cpuAmount: 0, diskAmount: 0 },
      },
    };
  }
}

const round = (usd: number): number => Math.round(usd * 1e6) / 1e6;
const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');
