import { LRUCache } from 'lru-cache';
import type { Clock } from '../../shared/clock.js';
import {
  type CacheEntryInfo,
  type CacheStats,
  type CacheStore,
  type CachedResponse,
  entrySize,
} from './cache-store.js';

export interface MemoryCacheOptions {
  maxEntries: number;
  maxBytes: number;
  maxEntryBytes: number;
  ttlMs: number;
  clock: Clock;
  /** Called when an entry leaves the cache for any reason (the disk store deletes its file). */
  onRemove?: (key: string) => void;
  /** Called for each entry evicted by the bounds (the metric). */
  onEvict?: () => void;
}

interface Slot {
  value: CachedResponse;
  hits: number;
}

/**
 * LRU response cache in memory (lru-cache), bounded by entry count, total bytes, entry size and
 * TTL. Options are checked at construction.
 *
 * @example
 *   const store = new MemoryCacheStore({ maxEntries: 1000, maxBytes: 1 << 30, maxEntryBytes: 8 << 20, ttlMs: 3_600_000, clock: systemClock });
 */
export class MemoryCacheStore implements CacheStore {
  readonly #lru: LRUCache<string, Slot>;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  #evictions = 0;

  constructor(options: MemoryCacheOptions) {
    for (const name of ['maxEntries', 'maxBytes', 'maxEntryBytes', 'ttlMs'] as const) {
      const value = options[name];
      if (!Number.isInteger(value) || value < 1)
        throw new TypeError(`${name} must be a positive integer, got ${String(value)}`);
    }
    if (options.maxEntryBytes > options.maxBytes) throw new TypeError('maxEntryBytes cannot exceed maxBytes');
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs;
    this.#lru = new LRUCache<string, Slot>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      maxEntrySize: options.maxEntryBytes,
      sizeCalculation: (slot) => entrySize(slot.value),
      dispose: (_slot, key, reason) => {
        if (reason === 'evict') {
          this.#evictions++;
          options.onEvict?.();
        }
        if (reason !== 'set') options.onRemove?.(key);
      },
    });
  }

  get(key: string): CachedResponse | undefined {
    const slot = this.#lru.get(key);
    if (slot === undefined) return undefined;
    // TTL against the injected clock (lru-cache's own TTL reads performance.now()).
    if (this.#clock.now() - slot.value.createdAt >= this.#ttlMs) {
      this.#lru.delete(key);
      return undefined;
    }
    slot.hits++;
    return slot.value;
  }

  set(key: string, value: CachedResponse): void {
    this.#lru.set(key, { value, hits: 0 });
  }

  /** Inserts without counting as use (restoring from disk, oldest first). */
  restore(key: string, value: CachedResponse): void {
    this.set(key, value);
  }

  has(key: string): boolean {
    return this.#lru.has(key);
  }

  stats(): CacheStats {
    return { entries: this.#lru.size, bytes: this.#lru.calculatedSize, evictions: this.#evictions };
  }

  list(limit: number): CacheEntryInfo[] {
    const now = this.#clock.now();
    const out: CacheEntryInfo[] = [];
    for (const [key, slot] of this.#lru.entries()) {
      if (out.length >= limit) break;
      out.push({
        keyPrefix: key.slice(0, 12),
        kind: slot.value.kind,
        bytes: entrySize(slot.value),
        ageMs: now - slot.value.createdAt,
        hits: slot.hits,
      });
    }
    return out;
  }

  async close(): Promise<void> {
    this.#lru.clear();
  }
}
