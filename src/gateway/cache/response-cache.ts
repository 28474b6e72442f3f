import type { Config } from '../../config/schema.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { attachCacheGauges, type GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { StreamFanout } from '../upstream/stream-fanout.js';
import type { Usage } from '../upstream/usage.js';
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

/** What a follower gets from the request it joined: its JSON answer, or its stream to subscribe to. */
export type SharedAnswer =
  { kind: 'json'; contentType: string; body: Buffer } | { kind: 'sse'; fanout: StreamFanout };

/**
 * The leader's side of a cache miss. It settles once (later calls do nothing): with a complete
 * answer, with a stream, or with a failure. Whatever it settles with is what its followers get.
 */
export interface CacheMiss {
  /** A complete 200 JSON answer: stored (unless `no-store`) and handed to the followers. */
  answer(contentType: string, body: Buffer, usage: Usage | undefined): void;
  /**
   * A 200 stream recorded by `fanout`: followers subscribe to it while it runs; it is stored
   * when it ends complete. `usage` is read then.
   */
  stream(fanout: StreamFanout, contentType: string, usage: () => Usage | undefined): void;
  /** Nothing to share (an error, another status, the client gone): followers go upstream themselves. */
  fail(): void;
}

/** A cacheable miss either joins an identical request in flight or leads one. */
export type Flight =
  { lead: CacheMiss; follow?: undefined } | { follow: Promise<SharedAnswer | undefined>; lead?: undefined };

/**
 * The response cache as the proxy sees it: a policy (`cache_mode` + Cache-Control), a store,
 * coalescing of identical concurrent misses (join or lead; the in-flight table is private), and
 * the counters behind /metrics.
 *
 * @example
 *   const flight = cache.join(plan);
 *   if (flight.follow) { const shared = await flight.follow; ... } // undefined: the leader failed
 *   else try { ...; flight.lead.answer(type, body, usage) } finally { flight.lead.fail() }
 */
export class ResponseCache {
  readonly mode: CacheMode;
  /** `key`: entries are partitioned by gateway key (cache_scope). */
  readonly scope: 'shared' | 'key';
  readonly store: CacheStore;
  readonly maxEntryBytes: number;
  /** Identical requests on their way upstream, by key: what their followers wait for. */
  readonly #flights = new Map<string, Promise<SharedAnswer | undefined>>();
  readonly #clock: Clock;
  readonly #metrics: GatewayMetrics;

  constructor(options: {
    mode: CacheMode;
    scope?: 'shared' | 'key';
    store: CacheStore;
    maxEntryBytes: number;
    clock: Clock;
    metrics: GatewayMetrics;
  }) {
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
  plan(
    route: string,
    model: string,
    body: Record<string, unknown>,
    cacheControl: string | undefined,
    keyId?: string,
  ): CachePlan | undefined {
    if (!isCacheable(this.mode, route, body)) return undefined;
    const { noCache, noStore } = cacheDirectives(cacheControl);
    if (noCache && noStore) return undefined;
    const partition = this.scope === 'key' ? (keyId ?? 'no-key') : undefined;
    return {
      key: cacheKey(route, model, body, partition),
      read: !noCache,
      write: !noStore,
      coalesce: !noCache && isCacheable('deterministic', route, body),
    };
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

  /** Joins the identical request in flight (coalescing plans only), else leads this one. */
  join(plan: CachePlan): Flight {
    const flight = plan.coalesce ? this.#flights.get(plan.key) : undefined;
    return flight === undefined ? { lead: this.lead(plan) } : { follow: flight };
  }

  /**
   * Leads a miss: the answer is stored when the plan writes, and shared with the identical
   * requests that join meanwhile when it coalesces. Also for a follower whose leader failed: it
   * goes upstream itself and leads those that arrive after.
   */
  lead(plan: CachePlan): CacheMiss {
    let share: ((answer: SharedAnswer | undefined) => void) | undefined;
    let flight: Promise<SharedAnswer | undefined> | undefined;
    if (plan.coalesce) {
      flight = new Promise((resolve) => (share = resolve));
      this.#flights.set(plan.key, flight);
    }
    let settled = false;
    // A later leader for the same key may have replaced this entry: only ours is removed.
    const land = (): void => {
      if (flight !== undefined && this.#flights.get(plan.key) === flight) this.#flights.delete(plan.key);
    };
    const fail = (): void => {
      if (settled) return;
      settled = true;
      share?.(undefined);
      land();
    };
    return {
      answer: (contentType, body, usage) => {
        // `no-store`: neither stored nor shared (followers go upstream, as they always did).
        if (!plan.write) return fail();
        if (settled) return;
        settled = true;
        this.#save(plan.key, 'json', contentType, body, usage);
        share?.({ kind: 'json', contentType, body });
        land();
      },
      stream: (fanout, contentType, usage) => {
        if (!plan.write) return fail();
        if (settled) return;
        settled = true;
        share?.({ kind: 'sse', fanout });
        // The entry stays while the stream runs (late followers replay it) until it is stored.
        void fanout.ended.then((recorded) => {
          if (recorded !== undefined) this.#save(plan.key, 'sse', contentType, recorded, usage());
          land();
        });
      },
      fail,
    };
  }

  #save(
    key: string,
    kind: CachedResponse['kind'],
    contentType: string,
    body: Buffer,
    usage: Usage | undefined,
  ): void {
    if (body.length > this.maxEntryBytes) return;
    void this.store.set(key, {
      kind,
      contentType,
      body,
      createdAt: this.#clock.now(),
      promptTokens: usage?.promptTokens,
      completionTokens: usage?.completionTokens,
    });
  }
}

/**
 * The cache the configuration asks for: none when `cache_mode` is off (and then nothing is ever
 * written to disk), memory, or memory persisted under `cache_dir`.
 */
export function createResponseCache(
  config: Config,
  deps: { clock: Clock; metrics: GatewayMetrics; logger: Logger; store?: CacheStore; redis?: Redis },
): ResponseCache | undefined {
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
      ? new RedisCacheStore({
          ...options,
          client: deps.redis,
          prefix: config.redis_prefix,
          logger: deps.logger,
          onEvict: (n) => deps.metrics.cacheEvictions.inc(n),
        })
      : config.cache_dir === undefined
        ? new MemoryCacheStore(options)
        : new DiskCacheStore(config.cache_dir, options, deps.logger));
  attachCacheGauges(deps.metrics, () => store.stats());
  return new ResponseCache({
    mode: config.cache_mode,
    scope: config.cache_scope,
    store,
    maxEntryBytes: options.maxEntryBytes,
    clock: deps.clock,
    metrics: deps.metrics,
  });
}
