/*
 * Tokens per key per window (`key_rate_limit_tokens`), fed by each answer's `usage` after it
 * is sent: a request is refused while the key's tokens in the last window are at the limit, so
 * one long answer can overshoot it once, then the key waits. This window is one process's; with
 * `redis_url`, RedisTokenWindow (redis-token-window.ts) shares one across replicas. Memory is bounded: per key one bucket per second of the window, at most
 * `maxKeys` keys (the oldest dropped).
 */

/** A key's tokens in the window ending now, and how long until it is below the limit (0: it is). */
export interface TokenCheck {
  used: number;
  waitMs: number;
}

/** Where the token window lives: this process (TokenWindow) or Redis (RedisTokenWindow). */
export interface TokenCounter {
  readonly windowMs: number;
  add(key: string, now: number, tokens: number): void;
  check(key: string, now: number, limit: number): TokenCheck | Promise<TokenCheck>;
}

interface Buckets {
  seconds: Float64Array;
  tokens: Float64Array;
}

/**
 * Tokens per key per window, fed by each answer's `usage`.
 *
 * @example
 *   const window = new TokenWindow(60_000);
 *   window.add('key_ab12cd', Date.now(), 1500);
 *   window.used('key_ab12cd', Date.now()); // 1500
 */
export class TokenWindow implements TokenCounter {
  readonly #keys = new Map<string, Buckets>();
  readonly #slots: number;

  constructor(
    readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {
    this.#slots = Math.max(1, Math.ceil(windowMs / 1000));
  }

  add(key: string, now: number, tokens: number): void {
    if (!(tokens > 0)) return;
    let b = this.#keys.get(key);
    if (b === undefined) {
      if (this.#keys.size >= this.maxKeys) {
        const oldest = this.#keys.keys().next();
        if (oldest.done !== true) this.#keys.delete(oldest.value);
      }
      b = { seconds: new Float64Array(this.#slots).fill(-1), tokens: new Float64Array(this.#slots) };
      this.#keys.set(key, b);
    }
    const second = Math.floor(now / 1000);
    const slot = second % this.#slots;
    if (b.seconds[slot] !== second) {
      b.seconds[slot] = second;
      b.tokens[slot] = 0;
    }
    b.tokens[slot] = (b.tokens[slot] as number) + tokens;
  }

  check(key: string, now: number, limit: number): TokenCheck {
    const used = this.used(key, now);
    return { used, waitMs: used >= limit ? this.waitMs(key, now, limit) : 0 };
  }

  /** Tokens counted for `key` in the window ending now. */
  used(key: string, now: number): number {
    const b = this.#keys.get(key);
    if (b === undefined) return 0;
    const oldest = Math.floor(now / 1000) - this.#slots + 1;
    let sum = 0;
    for (let i = 0; i < this.#slots; i++)
      if ((b.seconds[i] as number) >= oldest) sum += b.tokens[i] as number;
    return sum;
  }

  /** Milliseconds until the key's count falls below `limit` (0 when it already is). */
  waitMs(key: string, now: number, limit: number): number {
    const b = this.#keys.get(key);
    if (b === undefined) return 0;
    const second = Math.floor(now / 1000);
    let used = this.used(key, now);
    // Buckets leave the window oldest first.
    const order = [...b.seconds.keys()]
      .filter((i) => (b.seconds[i] as number) > second - this.#slots)
      .sort((x, y) => (b.seconds[x] as number) - (b.seconds[y] as number));
    for (const i of order) {
      if (used < limit) break;
      used -= b.tokens[i] as number;
      if (used < limit) return Math.max(0, ((b.seconds[i] as number) + this.#slots) * 1000 - now);
    }
    return 0;
  }
}
