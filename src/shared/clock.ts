/**
 * The clock is injected everywhere time matters (rate limits, idleness, runtime limits) so that
 * tests run in simulated time instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch, like Date.now(). */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock the test moves by hand.
 *
 * @example
 *   const clock = new ManualClock(0); clock.advance(60_000);
 */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
