/*
 * The rate limiter's storage seam. A memory store (one gateway) and a Redis store (several
 * gateways sharing one exact limit) implement it; one shared test suite runs against both.
 */

/** A limiter's answer for one request. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  /**
   * Requests still allowed in the current window (after this one, when it was counted). Absent
   * when nothing was counted (Redis unreachable with `fail-open`): unknown, not `limit`.
   */
  remaining?: number;
  /** Milliseconds until the oldest counted request leaves the window (a slot frees); 0 if none. Absent with `remaining`. */
  resetMs?: number;
}

export interface LimiterStore {
  /** Counts a request for `key` if the window has room; never counts a refused one. */
  hit(key: string, limit: number, windowMs: number, now: number): RateDecision | Promise<RateDecision>;
  /** The decision a request would get, without counting it (for /health). */
  peek(key: string, limit: number, windowMs: number, now: number): RateDecision | Promise<RateDecision>;
  close?(): Promise<void>;
}
