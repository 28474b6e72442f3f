import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import type { CacheStatsReading } from '../cache/cache-store.js';

/**
 * The gateway's Prometheus metrics, in a registry of its own (never the global one: each app
 * in a test gets fresh counters). Only measured values are exported; nothing is pre-filled.
 */
export interface GatewayMetrics {
  registry: Registry;
  requests: Counter<'route' | 'status'>;
  duration: Histogram<'route'>;
  overhead: Histogram<'route'>;
  upstream: Histogram<'route'>;
  ttfb: Histogram<'route'>;
  tokens: Counter<'type'>;
  rateLimited: Counter<'scope'>;
  upstreamErrors: Counter<'kind'>;
  authFailures: Counter<'reason'>;
  /** Requests that raised a security event, by event (the security log's `event`). */
  securityEvents: Counter<'event'>;
  inFlight: Gauge;
  cacheLookups: Counter<'result'>;
  cacheEvictions: Counter;
}

/** Gateway-added time is micro- to milliseconds; upstream time is milliseconds to minutes. */
const OVERHEAD_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createGatewayMetrics(options: { defaultMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'gateway_process_' });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'gateway_requests_total',
      help: 'Requests answered, by route and HTTP status',
      labelNames: ['route', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'gateway_request_duration_seconds',
      help: 'Total time from request to the end of the response',
      labelNames: ['route'],
      buckets: UPSTREAM_BUCKETS,
      registers,
    }),
    overhead: new Histogram({
      name: 'gateway_overhead_seconds',
      help: 'Time the gateway itself added (total minus upstream)',
      labelNames: ['route'],
      buckets: OVERHEAD_BUCKETS,
      registers,
    }),
    upstream: new Histogram({
      name: 'gateway_upstream_duration_seconds',
      help: 'Time spent waiting on the upstream (request sent to body end)',
      labelNames: ['route'],
      buckets: UPSTREAM_BUCKETS,
      registers,
    }),
    ttfb: new Histogram({
      name: 'gateway_stream_ttfb_seconds',
      help: 'Streams: time from request to the first byte sent to the client',
      labelNames: ['route'],
      buckets: UPSTREAM_BUCKETS,
      registers,
    }),
    tokens: new Counter({
      name: 'gateway_tokens_total',
      help: 'Tokens reported in upstream usage',
      labelNames: ['type'],
      registers,
    }),
    rateLimited: new Counter({
      name: 'gateway_rate_limited_total',
      help: 'Requests refused by the rate limiter',
      labelNames: ['scope'],
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'gateway_upstream_errors_total',
      help: 'Upstream failures by kind',
      labelNames: ['kind'],
      registers,
    }),
    authFailures: new Counter({
      name: 'gateway_auth_failures_total',
      help: 'Requests refused for a missing or wrong gateway key',
      labelNames: ['reason'],
      registers,
    }),
    securityEvents: new Counter({
      name: 'gateway_security_events_total',
      help: 'Requests that raised a security event (one line each in the security log): auth_failed, rate_limit_exceeded, invalid_input, request_too_large, upstream_error, server_error, slow_client',
      labelNames: ['event'],
      registers,
    }),
    inFlight: new Gauge({ name: 'gateway_in_flight_requests', help: 'Requests being served now', registers }),
    cacheLookups: new Counter({
      name: 'gateway_cache_requests_total',
      help: 'Response cache outcomes: hit, miss, bypass (not cacheable or Cache-Control), coalesced (served by an identical request in flight)',
      labelNames: ['result'],
      registers,
    }),
    cacheEvictions: new Counter({
      name: 'gateway_cache_evictions_total',
      help: 'Entries evicted to stay within the entry and byte bounds',
      registers,
    }),
  };
}

/**
 * A gauge read when Prometheus scrapes, published only when the read measured something: a
 * reading of `undefined` (the store could not be read) leaves the series out of that scrape
 * (its HELP and TYPE lines stay), rather than publishing a 0 nobody measured.
 */
class ObservedGauge extends Gauge {
  readonly #read: () => Promise<number | undefined>;

  constructor(name: string, help: string, registry: Registry, read: () => Promise<number | undefined>) {
    super({ name, help, registers: [registry] });
    this.#read = read;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    const value = await this.#read();
    if (value === undefined) {
      this.reset();
      const metric = await super.get();
      return { ...metric, values: [] };
    }
    this.set(value);
    return super.get();
  }
}

/** Cache size gauges, read from the store when Prometheus scrapes (never stale, never invented). */
export function attachCacheGauges(
  metrics: GatewayMetrics,
  stats: () => CacheStatsReading | Promise<CacheStatsReading>,
): void {
  new ObservedGauge(
    'gateway_cache_entries',
    'Responses held in the cache',
    metrics.registry,
    async () => (await stats()).entries,
  );
  new ObservedGauge(
    'gateway_cache_bytes',
    'Bytes held in the cache',
    metrics.registry,
    async () => (await stats()).bytes,
  );
}
