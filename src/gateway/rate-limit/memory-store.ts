import type { LimiterStore, RateDecision } from './limiter-store.js';

/*
 * Exact sliding-log limiter in memory: per key, a ring of the timestamps of the last `limit`
 * allowed requests. A request is allowed when fewer than `limit` timestamps lie inside the window
 * — an exact sliding window (no fixed-window burst at the boundary), O(1) per request, and
 * `limit × 8` bytes per active key.
 *
 * Memory is bounded: keys idle for a whole window are swept (at most once per window), and the
 * number of keys is capped (the oldest key is dropped past `maxKeys`).
 */

interface Ring {
  stamps: Float64Array;
  head: number;
  size: number;
}

export interface MemoryStoreOptions {
  maxKeys?: number;
}

/**
 * The exact sliding-log limiter for one gateway process.
 *
 * @example
 *   const store = new MemorySlidingLogStore({ maxKeys: 50_000 });
 *   store.hit('ip:127.0.0.1', 60, 60_000, Date.now()); // { allowed: true, remaining: 59, ... }
 */
export class MemorySlidingLogStore implements LimiterStore {
  readonly #rings = new Map<string, Ring>();
  readonly #maxKeys: number;
  #lastSweep = 0;

  constructor(options: MemoryStoreOptions = {}) {
    const maxKeys = options.maxKeys ?? 50_000;
    if (!Number.isInteger(maxKeys) || maxKeys < 1)
      throw new TypeError(`maxKeys must be a positive integer, got ${String(maxKeys)}`);
    this.#maxKeys = maxKeys;
  }

  get size(): number {
    return this.#rings.size;
  }

  hit(key: string, limit: number, windowMs: number, now: number): RateDecision {
    checkArgs(limit, windowMs);
    this.#maybeSweep(windowMs, now);
    let ring = this.#rings.get(key);
    if (ring === undefined || ring.stamps.length !== limit) {
      if (ring === undefined && this.#rings.size >= this.#maxKeys) this.#evictOldest();
      ring = { stamps: new Float64Array(limit), head: 0, size: 0 };
      this.#rings.set(key, ring);
    }
    expire(ring, now - windowMs);
    if (ring.size < limit) {
      ring.stamps[(ring.head + ring.size) % limit] = now;
      ring.size++;
      return decision(true, ring, limit, windowMs, now);
    }
    return decision(false, ring, limit, windowMs, now);
  }

  peek(key: string, limit: number, windowMs: number, now: number): RateDecision {
    checkArgs(limit, windowMs);
    const ring = this.#rings.get(key);
    if (ring === undefined || ring.stamps.length !== limit)
      return { allowed: true, limit, remaining: limit, resetMs: 0 };
    expire(ring, now - windowMs);
    return decision(ring.size < limit, ring, limit, windowMs, now);
  }

  async close(): Promise<void> {
    this.#rings.clear();
  }

  #maybeSweep(windowMs: number, now: number): void {
    if (now - this.#lastSweep < windowMs) return;
    this.#lastSweep = now;
    const cutoff = now - windowMs;
    for (const [key, ring] of this.#rings) {
      const newest =
        ring.size === 0
          ? -Infinity
          : (ring.stamps[(ring.head + ring.size - 1) % ring.stamps.length] as number);
      if (newest <= cutoff) this.#rings.delete(key);
    }
  }

  #evictOldest(): void {
    const oldest = this.#rings.keys().next();
    if (oldest.done !== true) this.#rings.delete(oldest.value);
  }
}

function expire(ring: Ring, cutoff: number): void {
  const cap = ring.stamps.length;
  while (ring.size > 0 && (ring.stamps[ring.head] as number) <= cutoff) {
    ring.head = (ring.head + 1) % cap;
    ring.size--;
  }
}

function decision(allowed: boolean, ring: Ring, limit: number, windowMs: number, now: number): RateDecision {
  const oldest = ring.size === 0 ? undefined : ring.stamps[ring.head];
  return {
    allowed,
    limit,
    remaining: limit - ring.size,
    resetMs: oldest === undefined ? 0 : Math.max(0, oldest + windowMs - now),
  };
}

function checkArgs(limit: number, windowMs: number): void {
  if (!Number.isInteger(limit) || limit < 1)
    throw new TypeError(`limit must be a positive integer, got ${String(limit)}`);
  if (!(windowMs > 0)) throw new TypeError(`windowMs must be positive, got ${String(windowMs)}`);
}
