import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HealthProbe } from '../health-probe.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { gatewayError } from '../errors.js';
import { jsonStats, type StatsDeps } from '../metrics/json-stats.js';

/**
 * `/health`: the gateway's real state — uptime, each upstream's last probe, and the caller's own
 * rate-limit allowance (from the headers the limiter hook set, without counting this call).
 * 200 while the gateway serves; `status: "degraded"` (still 200) when no upstream answers, so a
 * supervisor does not restart a healthy gateway because the pod is asleep.
 */
export function healthHandler(deps: { probe: HealthProbe; startedAt: number; now: () => number }) {
  return async function health(_request: FastifyRequest, reply: FastifyReply) {
    const upstreams = deps.probe.results().map((r) => ({
      route: r.routeId,
      reachable: r.reachable,
      status: r.status,
      latency_ms: r.latencyMs,
      error: r.error,
      checked_at: new Date(r.checkedAt).toISOString(),
    }));
    const anyReachable = upstreams.some((u) => u.reachable);
    return reply.send({
      status: anyReachable ? 'ok' : 'degraded',
      uptime_s: Math.round((deps.now() - deps.startedAt) / 1000),
      upstreams,
      rate_limit: {
        limit: Number(reply.getHeader('x-ratelimit-limit')),
        remaining: Number(reply.getHeader('x-ratelimit-remaining')),
        reset_s: Number(reply.getHeader('x-ratelimit-reset')),
      },
    });
  };
}

/**
 * `/metrics`: Prometheus text exposition format; `?format=json` or `Accept: application/json`
 * gives the original Python tool's JSON view (the dashboard reads it).
 */
export function metricsHandler(deps: StatsDeps) {
  return async function metricsRoute(request: FastifyRequest, reply: FastifyReply) {
    const query = request.query as { format?: string };
    const accept = request.headers.accept ?? '';
    if (
      query.format === 'json' ||
      (query.format === undefined &&
        /application\/json/i.test(accept) &&
        !/text\/plain|openmetrics/i.test(accept))
    ) {
      return reply.send(await jsonStats(deps));
    }
    if (query.format !== undefined && query.format !== 'prometheus') {
      throw gatewayError(
        'GW_INVALID_REQUEST',
        `unknown format ${JSON.stringify(query.format.slice(0, 40))}: use json or prometheus`,
        { param: 'format' },
      );
    }
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  };
}

/**
 * `/debug/cache` (only with `enable_profiling`, only with a gateway key): what the cache holds,
 * described — entry count, bytes, and per entry a key prefix, size, age and hits. Never content.
 */
export function debugCacheHandler(cache: ResponseCache | undefined) {
  return async function debugCache(_request: FastifyRequest, reply: FastifyReply) {
    if (cache === undefined) return reply.send({ mode: 'off', entries: 0, bytes: 0, items: [] });
    const stats = await cache.store.stats();
    return reply.send({
      mode: cache.mode,
      entries: stats.entries,
      bytes: stats.bytes,
      evictions: stats.evictions,
      items: (await cache.store.list(200)).map((e) => ({
        key_prefix: e.keyPrefix,
        kind: e.kind,
        bytes: e.bytes,
        age_s: Math.round(e.ageMs / 1000),
        hits: e.hits,
      })),
    });
  };
}
