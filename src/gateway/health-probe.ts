import type { Logger } from '../shared/logger.js';
import type { UpstreamPools } from './upstream/pools.js';
import type { RouteSource } from './upstream/route-source.js';

/*
 * Upstream reachability, probed in the background on a timer (never per request) through the
 * same pooled client: `GET <base>/models` with the route's key. /health reports the last result.
 */

/** The last probe of one route's upstream. */
export interface ProbeResult {
  routeId: string;
  reachable: boolean;
  status: number | undefined;
  latencyMs: number | undefined;
  error: string | undefined;
  checkedAt: number;
}

export interface HealthProbe {
  start(): void;
  stop(): void;
  /** Probes every route now (also used at start-up). */
  runOnce(): Promise<void>;
  results(): readonly ProbeResult[];
}

export function createHealthProbe(deps: {
  routes: RouteSource;
  pools: UpstreamPools;
  intervalMs: number;
  timeoutMs: number;
  logger: Logger;
  now: () => number;
  onResult?: (result: ProbeResult) => void;
}): HealthProbe {
  let results: ProbeResult[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function probe(route: ReturnType<RouteSource['all']>[number]): Promise<ProbeResult> {
    const target = deps.pools.target(route);
    const started = performance.now();
    try {
      const res = await target.pool.request({
        path: `${target.basePath}/models`,
        method: 'GET',
        headers: route.apiKey === undefined ? {} : { authorization: `Bearer ${route.apiKey}` },
        headersTimeout: deps.timeoutMs,
        bodyTimeout: deps.timeoutMs,
      });
      await res.body.dump();
      const reachable = res.statusCode === 200;
      return {
        routeId: route.id,
        reachable,
        status: res.statusCode,
        latencyMs: Math.round(performance.now() - started),
        error: reachable
          ? undefined
          : res.statusCode === 401
            ? 'the upstream refused the gateway key'
            : `HTTP ${res.statusCode}`,
        checkedAt: deps.now(),
      };
    } catch (err) {
      return {
        routeId: route.id,
        reachable: false,
        status: undefined,
        latencyMs: undefined,
        error: (err as { code?: string }).code ?? 'request failed',
        checkedAt: deps.now(),
      };
    }
  }

  async function runOnce(): Promise<void> {
    running ??= Promise.all(deps.routes.all().map(probe))
      .then((fresh) => {
        for (const r of fresh) {
          deps.onResult?.(r);
          const before = results.find((p) => p.routeId === r.routeId);
          if (before !== undefined && before.reachable !== r.reachable)
            deps.logger.info(
              { route: r.routeId, reachable: r.reachable, error: r.error },
              'upstream reachability changed',
            );
        }
        results = fresh;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  }

  return {
    start() {
      if (timer !== undefined) return;
      void runOnce();
      timer = setInterval(() => void runOnce(), deps.intervalMs);
      timer.unref();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
    runOnce,
    results: () => results,
  };
}
