/*
 * The response cache's storage seam: a memory store (LRU, bounded by entries, bytes and TTL),
 * optionally persisted to disk; a Redis store can implement the same interface for replicas.
 */

/** One cached answer, replayed as it was received. */
export interface CachedResponse {
  /** `json`: one body; `sse`: the recorded event stream, replayed byte for byte. */
  kind: 'json' | 'sse';
  contentType: string;
  body: Buffer;
  createdAt: number;
  promptTokens: number | undefined;
  completionTokens: number | undefined;
}

export interface CacheEntryInfo {
  /** The first 12 hex digits of the key: enough to tell entries apart, useless to guess content. */
  keyPrefix: string;
  kind: 'json' | 'sse';
  bytes: number;
  ageMs: number;
  hits: number;
}

export interface CacheStats {
  entries: number;
  bytes: number;
  evictions: number;
}

/**
 * What `stats()` reads: the sizes, or, when the store cannot be read (Redis unreachable), only
 * this process's own eviction count. Unmeasured sizes are absent, never 0.
 */
export type CacheStatsReading = CacheStats | { evictions: number; entries?: undefined; bytes?: undefined };

export interface CacheStore {
  get(key: string): CachedResponse | undefined | Promise<CachedResponse | undefined>;
  set(key: string, value: CachedResponse): void | Promise<void>;
  stats(): CacheStatsReading | Promise<CacheStatsReading>;
  /** Metadata only, newest first, never the content (for /debug/cache). */
  list(limit: number): CacheEntryInfo[] | Promise<CacheEntryInfo[]>;
  close(): Promise<void>;
}

/** Bytes an entry costs (body plus a fixed overhead for its bookkeeping). */
export function entrySize(value: CachedResponse): number {
  return value.body.length + 256;
}
