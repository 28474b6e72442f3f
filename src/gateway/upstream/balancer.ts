import type { Clock } from '../../shared/clock.js';
import type { Route, RouteSource } from './route-source.js';

/*
 * The one place that picks a route (pod) for a request: among the ready routes, the one with the
 * fewest requests in flight per unit of its `weight` wins; ties are broken at random in
 * proportion to weight (so idle routes of weight 3 and 1 get 3/4 and 1/4 of sequential traffic,
 * as a weight means in LiteLLM or Portkey). A route that fails `ejectAfter` times in a row
 * (connection failures, 5xx) is ejected for `cooldownMs`; after that it gets traffic again on
 * trial, and a successful health probe or request restores it at once.
 *
 * The health table holds the routes there are: {@link Balancer.retain} (called when the route
 * source's list changes) drops the entries of routes that are gone.
 *
 * @example
 *   const balancer = new Balancer(routes, { ejectAfter: 3, cooldownMs: 30_000, clock });
 *   const route = balancer.pick('qwen'); balancer.begin(route.id); ... balancer.end(route.id, ok);
 */

interface RouteHealth {
  inFlight: number;
  failures: number;
  ejectedUntil: number;
}

export class Balancer {
  readonly #routes: RouteSource;
  readonly #health = new Map<string, RouteHealth>();
  readonly #ejectAfter: number;
  readonly #cooldownMs: number;
  readonly #clock: Clock;
  readonly #random: () => number;

  constructor(
    routes: RouteSource,
    options: { ejectAfter: number; cooldownMs: number; clock: Clock; random?: () => number },
  ) {
    if (!Number.isInteger(options.ejectAfter) || options.ejectAfter < 1)
      throw new TypeError('ejectAfter must be a positive integer');
    if (!(options.cooldownMs > 0)) throw new TypeError('cooldownMs must be positive');
    this.#routes = routes;
    this.#ejectAfter = options.ejectAfter;
    this.#cooldownMs = options.cooldownMs;
    this.#clock = options.clock;
    this.#random = options.random ?? Math.random;
  }

  /** How many routes could serve at all (ejected ones included). */
  get size(): number {
    return this.#routes.all().length;
  }

  /**
   * The route for a request: among routes serving `model` (or all, if none names it), not
   * excluded, not ejected, the least loaded. With every route ejected, the least recently
   * ejected one is tried rather than failing outright.
   */
  pick(model: string | undefined, exclude?: ReadonlySet<string>): Route | undefined {
    const all = this.#routes.all();
    if (all.length <= 1) {
      const only = all[0];
      return only !== undefined && exclude?.has(only.id) === true ? undefined : only;
    }
    let candidates = all.filter((r) => exclude?.has(r.id) !== true && weightOf(r) > 0);
    const serving = model === undefined ? [] : candidates.filter((r) => r.model === model);
    if (serving.length > 0) candidates = serving;
    if (candidates.length === 0) return undefined;
    const now = this.#clock.now();
    const healthy = candidates.filter((r) => this.#state(r.id).ejectedUntil <= now);
    const pool =
      healthy.length > 0
        ? healthy
        : [
            candidates.reduce((a, b) =>
              this.#state(a.id).ejectedUntil <= this.#state(b.id).ejectedUntil ? a : b,
            ),
          ];
    // Least in flight per unit of weight (compared as cross products: exact in integers).
    let best: Route[] = [];
    let bestLoad = 0;
    let bestWeight = 1;
    let total = 0;
    for (const route of pool) {
      const load = this.#state(route.id).inFlight;
      const weight = weightOf(route);
      const order = best.length === 0 ? -1 : load * bestWeight - bestLoad * weight;
      if (order < 0) {
        best = [route];
        bestLoad = load;
        bestWeight = weight;
        total = weight;
      } else if (order === 0) {
        best.push(route);
        total += weight;
      }
    }
    let ticket = this.#random() * total;
    for (const route of best) {
      ticket -= weightOf(route);
      if (ticket < 0) return route;
    }
    return best[best.length - 1];
  }

  /**
   * Keeps the health entries of `routes` (the route source's new list) and drops the others;
   * one still serving a request goes at the next change after it ended.
   */
  retain(routes: readonly Route[]): void {
    const keep = new Set(routes.map((r) => r.id));
    for (const [id, state] of this.#health)
      if (!keep.has(id) && state.inFlight === 0) this.#health.delete(id);
  }

  /** Route ids the health table holds (tests: it stays bounded by the routes there are). */
  tracked(): string[] {
    return [...this.#health.keys()];
  }

  begin(routeId: string): void {
    this.#state(routeId).inFlight++;
  }

  /** The request is over; `ok` false counts towards ejection, true resets the count. */
  end(routeId: string, ok: boolean): void {
    const state = this.#state(routeId);
    state.inFlight = Math.max(0, state.inFlight - 1);
    this.observe(routeId, ok);
  }

  /** A health signal outside a request (the background probe). */
  observe(routeId: string, ok: boolean): void {
    const state = this.#state(routeId);
    if (ok) {
      state.failures = 0;
      state.ejectedUntil = 0;
      return;
    }
    state.failures++;
    if (state.failures >= this.#ejectAfter) state.ejectedUntil = this.#clock.now() + this.#cooldownMs;
  }

  /** For /health and tests. */
  snapshot(): Array<{ id: string; inFlight: number; failures: number; ejected: boolean }> {
    const now = this.#clock.now();
    return this.#routes.all().map((r) => {
      const s = this.#state(r.id);
      return { id: r.id, inFlight: s.inFlight, failures: s.failures, ejected: s.ejectedUntil > now };
    });
  }

  #state(id: string): RouteHealth {
    let state = this.#health.get(id);
    if (state === undefined) {
      state = { inFlight: 0, failures: 0, ejectedUntil: 0 };
      this.#health.set(id, state);
    }
    return state;
  }
}

function weightOf(route: Route): number {
  return route.weight ?? 1;
}
