import type { Clock } from '../shared/clock.js';

/**
 * RunPod v2's per-caller quota windows and their IETF `RateLimit` / `RateLimit-Policy` headers
 * (structured-field lists, one member per window, as the spec's RateLimitHeader describes).
 * Fixed windows aligned to the epoch: simple, and what the headers' `t` (seconds to reset) implies.
 * The quotas are the spec's example values.
 */
export const RATE_POLICY = [
  { name: 'minute', quota: 60, windowS: 60 },
  { name: 'hour', quota: 3000, windowS: 3600 },
  { name: 'day', quota: 50_000, windowS: 86_400 },
] as const;

export class RateWindows {
  readonly #clock: Clock;
  /** window name → [window index, count]. */
  readonly #counts = new Map<string, [number, number]>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Counts one request. */
  hit(): void {
    const now = this.#clock.now();
    for (const w of RATE_POLICY) {
      const index = Math.floor(now / (w.windowS * 1000));
      const entry = this.#counts.get(w.name);
      this.#counts.set(
        w.name,
        entry !== undefined && entry[0] === index ? [index, entry[1] + 1] : [index, 1],
      );
    }
  }

  /** Seconds until the first exhausted window resets, or undefined when within quota. */
  exceeded(): number | undefined {
    const state = this.#state();
    const over = state.filter((s) => s.used > s.quota);
    return over.length === 0 ? undefined : Math.max(...over.map((s) => s.resetS));
  }

  headers(): Record<string, string> {
    const state = this.#state();
    return {
      RateLimit: state.map((s) => `"${s.name}";r=${Math.max(0, s.quota - s.used)};t=${s.resetS}`).join(', '),
      'RateLimit-Policy': RATE_POLICY.map((w) => `"${w.name}";q=${w.quota};w=${w.windowS}`).join(', '),
    };
  }

  #state(): Array<{ name: string; quota: number; used: number; resetS: number }> {
    const now = this.#clock.now();
    return RATE_POLICY.map((w) => {
      const size = w.windowS * 1000;
      const index = Math.floor(now / size);
      const entry = this.#counts.get(w.name);
      const used = entry !== undefined && entry[0] === index ? entry[1] : 0;
      return { name: w.name, quota: w.quota, used, resetS: Math.ceil(((index + 1) * size - now) / 1000) };
    });
  }
}
