import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../shared/clock.js';
import type { AppError } from '../shared/errors.js';
import { cleanForLog, flatLineLogger, type Logger } from '../shared/logger.js';
import { newContext } from './context.js';
import { gatewayError, renderError, securityEventFor, shouldRetryHeader, toGatewayError } from './errors.js';
import type { GatewayMetrics } from './metrics/gateway-metrics.js';
import type { AuthResult } from './middleware/auth.js';
import { clientKey } from './rate-limit/client-key.js';
import { rateLimitHeaders } from './rate-limit/headers.js';
import type { LimiterStore, RateDecision } from './rate-limit/limiter-store.js';
import type { RecentStats } from './metrics/recent-stats.js';
import type { TokenCounter } from './rate-limit/token-window.js';
import type { UsageSink } from './usage-recorder.js';

/*
 * The request path's hooks, in order: context + security headers → (CORS) → rate limit per
 * client → auth → rate limit per key. The access log and metrics are written once per request
 * when the response closes (the start hook's one 'close' listener); errors are rendered once in
 * the error handler.
 */

/** What the request path's hooks need. */
export interface HookDeps {
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
  limiter: LimiterStore;
  /** Per client IP: requests without a valid key, and the open routes. */
  limit: number;
  /** Per gateway key (and per IP with auth "none", where the IP stands for the user). */
  keyLimit: number;
  /** Tokens per key per window, fed by usage; undefined: off. */
  tokenLimit: { max: number; window: TokenCounter } | undefined;
  windowMs: number;
  headers: Readonly<Record<string, string>>;
  verify: ((authorization: string | undefined) => AuthResult) | undefined;
  /** Where forwarded requests are counted for the watchdog (absent: not recorded). */
  usage: UsageSink | undefined;
  recent: RecentStats;
}

export function startHook(deps: HookDeps) {
  const finish = finishRequest(deps);
  return function onRequestStart(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    request.ctx = newContext(process.hrtime.bigint(), request.routeOptions.config.label ?? 'other');
    reply.headers(deps.headers);
    reply.header('x-request-id', request.id);
    deps.metrics.inFlight.inc();
    // The request's one 'close' listener ('close' fires for finished and for aborted responses
    // alike; Fastify's onResponse only for finished ones, which would lose the access line and
    // leak in-flight of every abort). In this order: a client gone before its response finished
    // fires the request's abort signal (wake wait and upstream call stop); then what the request
    // holds is given back (the route's in-flight slot, with the outcome); then the access line
    // and metrics, which read all of that.
    reply.raw.once('close', () => {
      const ctx = request.ctx;
      if (!reply.raw.writableFinished) {
        ctx.clientClosed = true;
        ctx.abort.abort();
      }
      ctx.release?.();
      finish(request, reply);
    });
    done();
  };
}

/**
 * Per-client sliding window, for what no key vouches for. API routes only peek here: a client
 * IP over its limit (by failed keys) is refused before its key is even checked, so guessing
 * stays at `limit` per window; failed keys are counted in the auth hook, good ones per key.
 * /health and /metrics only peek (pollers and dashboards must not eat the allowance); unknown
 * URLs count; CORS preflights are not counted. With auth "none" (loopback only) the IP is the
 * user and gets the per-key allowance.
 */
export function clientLimitHook(deps: HookDeps) {
  const windowS = Math.round(deps.windowMs / 1000);
  return async function clientLimit(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.method === 'OPTIONS') return;
    const key = `ip:${clientKey(request.ip)}`;
    const kind = request.routeOptions.config.kind;
    const now = deps.clock.now();
    if (kind === 'api' && deps.verify === undefined) {
      const decision = await deps.limiter.hit(key, deps.keyLimit, deps.windowMs, now);
      reply.headers(rateLimitHeaders(decision, windowS));
      if (!decision.allowed) refuse(deps, decision, 'ip');
      return;
    }
    const peek = kind === 'health' || kind === 'metrics' || kind === 'public' || kind === 'api';
    const decision = await (peek
      ? deps.limiter.peek(key, deps.limit, deps.windowMs, now)
      : deps.limiter.hit(key, deps.limit, deps.windowMs, now));
    // An API request's headers describe its key's window (set by the auth hook), unless refused here.
    if (kind !== 'api' || !decision.allowed) reply.headers(rateLimitHeaders(decision, windowS));
    if (!decision.allowed && (!peek || kind === 'api')) refuse(deps, decision, 'ip');
  };
}

/** RFC 6750 §3: the challenge on every 401; `invalid_token` only when a bearer token was sent. */
const CHALLENGE_MISSING = 'Bearer realm="runpod-llm"';
const CHALLENGE_INVALID =
  'Bearer realm="runpod-llm", error="invalid_token", error_description="The gateway key is not valid"';

/**
 * Bearer auth. A missing or wrong key counts in the client's window (then 401 with an RFC 6750
 * challenge); a valid one counts only in its key's window (its headers are the key's), then the
 * optional token window.
 */
export function authHook(deps: HookDeps) {
  const windowS = Math.round(deps.windowMs / 1000);
  return async function auth(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (deps.verify === undefined || request.method === 'OPTIONS') return;
    const result = deps.verify(request.headers.authorization);
    if (!result.ok) {
      deps.metrics.authFailures.inc({ reason: result.reason });
      // A failed key counts against the client's window on every route (API routes only peeked it).
      const decision = await deps.limiter.hit(
        `ip:${clientKey(request.ip)}`,
        deps.limit,
        deps.windowMs,
        deps.clock.now(),
      );
      reply.headers(rateLimitHeaders(decision, windowS));
      if (!decision.allowed) refuse(deps, decision, 'ip');
      const message =
        result.reason === 'scheme'
          ? 'use the header Authorization: Bearer <gateway key>'
          : result.reason === 'missing'
            ? 'missing gateway key: send Authorization: Bearer <gateway key> (see `runpod-llm status` for the key file)'
            : 'invalid gateway key';
      throw gatewayError('GW_UNAUTHORIZED', message, {
        headers: { 'www-authenticate': result.reason === 'invalid' ? CHALLENGE_INVALID : CHALLENGE_MISSING },
      });
    }
    request.ctx.keyId = result.keyId;
    if (request.routeOptions.config.kind !== 'api') return;
    const now = deps.clock.now();
    const decision = await deps.limiter.hit(`key:${result.keyId}`, deps.keyLimit, deps.windowMs, now);
    reply.headers(rateLimitHeaders(decision, windowS));
    if (!decision.allowed) refuse(deps, decision, 'key');
    if (deps.tokenLimit !== undefined) await checkTokens(deps, deps.tokenLimit, result.keyId, now, reply);
  };
}

/** `key_rate_limit_tokens`: OpenAI's token headers, and a 429 while the key's window is full. */
async function checkTokens(
  deps: HookDeps,
  limit: { max: number; window: TokenCounter },
  keyId: string,
  now: number,
  reply: FastifyReply,
): Promise<void> {
  const { used, waitMs } = await limit.window.check(keyId, now, limit.max);
  reply.header('x-ratelimit-limit-tokens', String(limit.max));
  reply.header('x-ratelimit-remaining-tokens', String(Math.max(0, limit.max - used)));
  if (used < limit.max) return;
  deps.metrics.rateLimited.inc({ scope: 'key' });
  const retry = Math.max(1, Math.ceil(waitMs / 1000));
  throw gatewayError(
    'GW_RATE_LIMITED',
    `Token rate limit reached: ${limit.max} tokens per ${Math.round(deps.windowMs / 1000)} s for this key (key_rate_limit_tokens). Retry after ${retry} s.`,
    {
      headers: { 'retry-after': String(retry), 'x-ratelimit-reset-tokens': `${retry}s` },
    },
  );
}

function refuse(deps: HookDeps, decision: RateDecision, scope: 'ip' | 'key'): never {
  deps.metrics.rateLimited.inc({ scope });
  const retry = Math.max(1, Math.ceil((decision.resetMs ?? 0) / 1000));
  throw gatewayError(
    'GW_RATE_LIMITED',
    `Rate limit reached: ${decision.limit} requests per ${Math.round(deps.windowMs / 1000)} s. Retry after ${retry} s.`,
    {
      headers: { 'retry-after': String(retry) },
    },
  );
}

export function errorHandler(deps: Pick<HookDeps, 'logger'>) {
  return function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
    const error: AppError = toGatewayError(err);
    request.ctx ??= newContext(process.hrtime.bigint(), 'other');
    request.ctx.errorCode = error.code;
    request.ctx.event ??= securityEventFor(error.status, error.code);
    if (error.code === 'GW_INTERNAL')
      deps.logger.error(
        {
          reqId: request.id,
          err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err),
        },
        'unhandled gateway error',
      );
    if (error.headers !== undefined) reply.headers(error.headers);
    const retry = shouldRetryHeader(error.status, error.apiCode);
    if (retry !== undefined) reply.header('x-should-retry', retry);
    reply.code(error.status).type('application/json').send(renderError(error));
  };
}

/** One access line per request; a security event line when the request raised one. */
function finishRequest(
  deps: Pick<HookDeps, 'logger' | 'metrics' | 'usage' | 'clock' | 'recent' | 'tokenLimit'>,
) {
  // The access line is flat (every field a string or number set below): top-level redaction
  // only. Security events and errors below go through deps.logger, fully redacted.
  const access = flatLineLogger(deps.logger);
  return function finish(request: FastifyRequest, reply: FastifyReply): void {
    const ctx = request.ctx;
    deps.metrics.inFlight.dec();
    const totalMs = Number(process.hrtime.bigint() - ctx.start) / 1e6;
    const status = reply.raw.writableFinished ? reply.statusCode : 499;
    const route = ctx.route;
    deps.metrics.requests.inc({ route, status: String(status) });
    deps.metrics.duration.observe({ route }, totalMs / 1000);
    if (ctx.upstreamMs !== undefined) {
      deps.metrics.upstream.observe({ route }, ctx.upstreamMs / 1000);
      deps.metrics.overhead.observe({ route }, Math.max(0, totalMs - ctx.upstreamMs) / 1000);
    }
    if (ctx.ttfbMs !== undefined) deps.metrics.ttfb.observe({ route }, ctx.ttfbMs / 1000);
    // The dashboard's view is about the API, not about its own polling of /metrics and /health.
    if (request.routeOptions.config.kind === 'api' || route === 'other')
      deps.recent.record(deps.clock.now(), totalMs, ctx.ttfbMs, status);
    if (ctx.routeId !== undefined)
      deps.usage?.record(
        ctx.routeId,
        deps.clock.now(),
        ctx.usage?.promptTokens ?? 0,
        ctx.usage?.completionTokens ?? 0,
      );
    if (ctx.usage !== undefined && ctx.keyId !== undefined)
      deps.tokenLimit?.window.add(
        ctx.keyId,
        deps.clock.now(),
        ctx.usage.promptTokens + ctx.usage.completionTokens,
      );
    if (ctx.usage !== undefined) {
      deps.metrics.tokens.inc({ type: 'prompt' }, ctx.usage.promptTokens);
      deps.metrics.tokens.inc({ type: 'completion' }, ctx.usage.completionTokens);
    }
    const bytes = ctx.bytesOut || Number(reply.getHeader('content-length') ?? 0);
    const path = cleanForLog(request.url.split('?')[0]);
    access.info({
      msg: 'request',
      reqId: request.id,
      method: request.method,
      path,
      status,
      durationMs: round(totalMs),
      upstreamMs: ctx.upstreamMs === undefined ? undefined : round(ctx.upstreamMs),
      ttfbMs: ctx.ttfbMs === undefined ? undefined : round(ctx.ttfbMs),
      bytes,
      ip: request.ip,
      keyId: ctx.keyId,
      tokensIn: ctx.usage?.promptTokens,
      tokensOut: ctx.usage?.completionTokens,
      assembled: ctx.assembled,
    });
    if (ctx.event !== undefined) {
      deps.metrics.securityEvents.inc({ event: ctx.event });
      const line = {
        event: ctx.event,
        reqId: request.id,
        ip: request.ip,
        userAgent: cleanForLog(request.headers['user-agent']),
        path,
        method: request.method,
        status,
        code: ctx.errorCode,
        upstream: ctx.upstreamError,
      };
      deps.recent.securityEvent({
        at: new Date(deps.clock.now()).toISOString(),
        event: ctx.event,
        ip: request.ip,
        path,
        status,
        code: ctx.errorCode,
        userAgent: line.userAgent,
      });
      if (ctx.event === 'server_error') deps.logger.error(line, 'security event');
      else deps.logger.warn(line, 'security event');
    }
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
