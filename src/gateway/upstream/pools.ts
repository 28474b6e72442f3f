import { Pool } from 'undici';
import type { Route } from './route-source.js';

/*
 * One keep-alive undici Pool per upstream origin, shared by every request to it. Pools of
 * routes that disappear are closed by {@link UpstreamPools.retain}, which the gateway calls each
 * time the route source's list changes (a recreated or woken pod has a new origin).
 */

/** Limits of each per-origin pool. */
export interface PoolOptions {
  connections: number;
  connectTimeoutMs: number;
}

export interface UpstreamTarget {
  pool: Pool;
  /** Path of the base URL (`/v1`, or `/proxy/pod-8000/v1` behind a path-routing proxy). */
  basePath: string;
  origin: string;
}

export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #targets = new Map<string, UpstreamTarget>();
  readonly #options: PoolOptions;

  constructor(options: PoolOptions) {
    if (!(options.connections >= 1)) throw new TypeError('connections must be at least 1');
    this.#options = options;
  }

  /** The pool and path prefix for a route (parsed once per base URL). */
  target(route: Route): UpstreamTarget {
    let target = this.#targets.get(route.baseUrl);
    if (target !== undefined) return target;
    const url = new URL(route.baseUrl);
    let pool = this.#pools.get(url.origin);
    if (pool === undefined) {
      pool = new Pool(url.origin, {
        connections: this.#options.connections,
        connectTimeout: this.#options.connectTimeoutMs,
        // Idle sockets are dropped before a typical server's 5 s keep-alive to avoid racing it.
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        pipelining: 1,
      });
      this.#pools.set(url.origin, pool);
    }
    target = { pool, basePath: url.pathname.replace(/\/+$/, ''), origin: url.origin };
    this.#targets.set(route.baseUrl, target);
    return target;
  }

  /** Closes pools whose origin no current route uses. */
  async retain(routes: readonly Route[]): Promise<void> {
    const keep = new Set(routes.map((r) => new URL(r.baseUrl).origin));
    for (const [base, target] of this.#targets) if (!keep.has(target.origin)) this.#targets.delete(base);
    const closing: Promise<void>[] = [];
    for (const [origin, pool] of this.#pools) {
      if (keep.has(origin)) continue;
      this.#pools.delete(origin);
      closing.push(pool.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  /** Origins with an open pool (tests: bounded by the routes there are). */
  origins(): string[] {
    return [...this.#pools.keys()];
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#targets.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}
