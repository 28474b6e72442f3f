import type { Counter, Histogram } from 'prom-client';
import type { ResponseCache } from '../cache/response-cache.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { RecentStats } from './recent-stats.js';

/*
 * `/metrics?format=json`: the original Python tool's field names with real values. Counts are read from the
 * same prom-client objects the Prometheus text comes from, so the two views always agree.
 * A value that was never measured is null (cache hit rate with no lookups, percentiles with no
 * requests), never 0.
 */

async function counterValues(
  counter: Counter,
): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  return (await counter.get()).values.map((v) => ({
    labels: v.labels as Record<string, string | number>,
    value: v.value,
  }));
}

async function sum(
  counter: Counter,
  where: (labels: Record<string, string | number>) => boolean = () => true,
): Promise<number> {
  return (await counterValues(counter)).filter((v) => where(v.labels)).reduce((acc, v) => acc + v.value, 0);
}

async function histogramTotals(histogram: Histogram): Promise<{ sum: number; count: number }> {
  const values = (await histogram.get()).values;
  let total = 0;
  let count = 0;
  for (const v of values) {
    if (v.metricName?.endsWith('_sum') === true) total += v.value;
    if (v.metricName?.endsWith('_count') === true) count += v.value;
  }
  return { sum: total, count };
}

const OWN_ROUTES = new Set(['health', 'metrics', 'debug', 'dashboard']);

const ratio = (a: number, b: number): number | null =>
  b === 0 ? null : Math.round((a / b) * 10_000) / 10_000;

export interface StatsDeps {
  metrics: GatewayMetrics;
  recent: RecentStats;
  cache: ResponseCache | undefined;
  startedAt: number;
  now: () => number;
  /** The manager's view of the pod, when the gateway runs beside one. */
  pod?: () => unknown;
}

export async function jsonStats(deps: StatsDeps) {
  const now = deps.now();
  const { metrics, recent } = deps;
  // The API's traffic: the gateway's own pages, probes and scrapes are not requests_total.
  const api = (l: Record<string, string | number>): boolean => !OWN_ROUTES.has(String(l.route));
  const requests = await sum(metrics.requests, api);
  const errors = await sum(metrics.requests, (l) => api(l) && Number(l.status) >= 500);
  const hits = await sum(metrics.cacheLookups, (l) => l.result === 'hit' || l.result === 'coalesced');
  const misses = await sum(metrics.cacheLookups, (l) => l.result === 'miss');
  const duration = await histogramTotals(metrics.duration);
  const cacheStats = await deps.cache?.store.stats();
  return {
    requests_total: requests,
    cache_hits: hits,
    cache_misses: misses,
    errors_total: errors,
    avg_response_time:
      duration.count === 0 ? null : Math.round((duration.sum / duration.count) * 1_000_000) / 1000,
    cache_entries: cacheStats?.entries ?? null,
    cache_size_bytes: cacheStats?.bytes ?? null,
    cache_hit_rate: ratio(hits, hits + misses),
    error_rate: ratio(errors, requests),
    cache_mode: deps.cache?.mode ?? 'off',
    cache_evictions: deps.cache === undefined ? null : await sum(metrics.cacheEvictions),
    latency_ms: recent.latency(),
    ttft_ms: recent.ttft(),
    tokens_in: await sum(metrics.tokens, (l) => l.type === 'prompt'),
    tokens_out: await sum(metrics.tokens, (l) => l.type === 'completion'),
    rate_limited_total: await sum(metrics.rateLimited),
    auth_failures_total: await sum(metrics.authFailures),
    upstream_errors_total: await sum(metrics.upstreamErrors),
    uptime_s: Math.round((now - deps.startedAt) / 1000),
    series: recent.series(now),
    security_events: recent.events(),
    pod: deps.pod?.() ?? null,
  };
}
