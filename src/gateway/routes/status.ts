import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HealthProbe } from '../health-probe.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';

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

/** `/metrics`: Prometheus text exposition format. */
export function metricsHandler(metrics: GatewayMetrics) {
  return async function metricsRoute(_request: FastifyRequest, reply: FastifyReply) {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  };
}
