import type { Config } from '../../config/schema.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { attachCacheGauges, type GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { StreamFanout } from '../upstream/stream-fanout.js';
import { cacheDirectives, cacheKey, type CacheMode, isCacheable } from './cache-key.js';
import type { CacheStore, CachedResponse } from './cache-store.js';
import { DiskCacheStore } from './disk-store.js';
import { MemoryCacheStore } from './memory-store.js';
import { RedisCacheStore } from './redis-store.js';
import type { Redis } from 'ioredis';

/** What the cache will do for one request. */
export interface CachePlan {
  key: string;
  /** Look the answer up (false: `Cache-Control: no-cache`). */
  read: boolean;
  /** Store a good answer (false: `no-store`). */
  write: boolean;
  /** Share one upstream call among identical concurrent misses (deterministic requests only). */
  coalesce: boolean;
}

/** An identical request already on its way upstream. */
export type Inflight = { kind: 'json'; result: Promise<CachedResponse | undefined> } | { kind: 'sse'; fanout: Promise<StreamFanout | undefined> };

/**
 * The response cache as the proxy sees it: a policy (`cache_mode` + Cache-Control), a store,
 * the in-flight table for coalescing, and the counters behind /metrics.
 */
export class ResponseCache {
  readonly mode: CacheMode;
  /** `key`: entries are partitioned by gateway key (cache_scope). */
  readonly scope: 'shared' | 'key';
  readonly store: CacheStore;
  readonly maxEntryBytes: number;
  readonly inflight = new Map<string, Inflight>();
  readonly #clock: Clock;
  readonly #metrics: GatewayMetrics;

  constructor(options: { mode: CacheMode; scope?: 'shared' | 'key'; store: CacheStore; maxEntryBytes: number; clock: Clock; metrics: GatewayMetrics }) {
    this.mode = options.mode;
    this.scope = options.scope ?? 'shared';
    this.store = options.store;
    this.maxEntryBytes = options.maxEntryBytes;
    this.#clock = options.clock;
    this.#metrics = options.metrics;
  }

  /**
   * Undefined when the request is not cacheable (X-Cache: BYPASS). `keyId`: the caller's gateway
   * key id (undefined with auth off), used when the scope is `key`.
   */
  plan(route: string, model: string, body: Record<string, unknown>, cacheControl: string | undefined, keyId?: string): CachePlan | undefined {
    if (!isCacheable(this.mode, route, body)) return undefined;
    const { noCache, noStore } = cacheDirectives(cacheControl);
    if (noCache && noStore) return undefined;
    const partition = this.scope === 'key' ? (keyId ?? 'no-key') : undefined;
    return { key: cacheKey(route, model, body, partition), read: !noCache, write: !noStore, coalesce: !noCache && isCacheable('deterministic', route, body) };
  }

  async lookup(key: string): Promise<CachedResponse | undefined> {
    const hit = await this.store.get(key);
    if (hit === undefined) this.#metrics.cacheLookups.inc({ result: 'miss' });
    else this.#metrics.cacheLookups.inc({ result: 'hit' });
    return hit;
  }

  bypassed(): void {
    this.#metrics.cacheLookups.inc({ result: 'bypass' });
  }

  coalesced(): void {
    this.#metrics.cacheLookups.inc({ result: 'coalesced' });
  }

  save(key: string, kind: CachedResponse['kind'], contentType: string, body: Buffer, usage: { promptTokens: number; completionTokens: number } | undefined): void {
    if (body.length > this.maxEntryBytes) return;
    void this.store.set(key, { kind, contentType, body, createdAt: this.#clock.now(), promptTokens: usage?.promptTokens, completionTokens: usage?.completionTokens });
  }
}

/**
 * The cache the configuration asks for: none when `cache_mode` is off (and then nothing is ever
 * written to disk), memory, or memory persisted under `cache_dir`.
 */
export function createResponseCache(config: Config, deps: { clock: Clock; metrics: GatewayMetrics; logger: Logger; store?: CacheStore; redis?: Redis }): ResponseCache | undefined {
  if (config.cache_mode === 'off') return undefined;
  const options = {
    maxEntries: config.max_cache_size,
    maxBytes: config.cache_size_bytes,
    maxEntryBytes: Math.min(config.cache_max_entry_bytes, config.cache_size_bytes),
    ttlMs: config.cache_ttl_s * 1000,
    clock: deps.clock,
    onEvict: () => deps.metrics.cacheEvictions.inc(),
  };
  const store =
    deps.store ??
    (deps.redis !== undefined
      ? new RedisCacheStore({ ...options, client: deps.redis, prefix: config.redis_prefix, logger: deps.logger, onEvict: (n) => deps.metrics.cacheEvictions.inc(n) })
      : config.cache_dir === undefined
        ? new MemoryCacheStore(options)
        : new DiskCacheStore(config.cache_dir, options, deps.logger));
  attachCacheGauges(deps.metrics, () => store.stats());
  return new ResponseCache({ mode: config.cache_mode, scope: config.cache_scope, store, maxEntryBytes: options.maxEntryBytes, clock: deps.clock, metrics: deps.metrics });
}
