import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { CachedResponse } from '../cache/cache-store.js';
import type { CacheMiss, CachePlan, ResponseCache, SharedAnswer } from '../cache/response-cache.js';
import { gatewayError, shouldRetryHeader } from '../errors.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../upstream/headers.js';
import type { UpstreamPools } from '../upstream/pools.js';
import type { Balancer } from '../upstream/balancer.js';
import type { Route } from '../upstream/route-source.js';
import { StreamFanout } from '../upstream/stream-fanout.js';
import { type StreamedTravel, streamedTravel } from '../upstream/stream-assembly.js';
import { usageFrom } from '../upstream/usage.js';
import { RequestAbort } from '../context.js';
import type { WakeControl } from '../wake.js';
import type { Validated } from '../validation/validate.js';
import { checkStatus, cutOffEvent, noteFailure, pumpInto, readBounded, relay, toEnvelope } from './relay.js';
import { type ApiRouteSpec, queryParamAllowed, upstreamPathFor, type ValidatedRoute } from './route-table.js';
import { contextLengthError } from '../upstream/context-length.js';

export interface ProxyDeps {
  balancer: Balancer;
  pools: UpstreamPools;
  validate: (route: ValidatedRoute, body: unknown) => Validated;
  metrics: GatewayMetrics;
  timeouts: { connectMs: number; firstByteMs: number; idleMs: number };
  maxResponseBytes: number;
  /** The response cache; absent when `cache_mode` is off. */
  cache: ResponseCache | undefined;
  /** Scale to zero: wake a pod when none is ready (`wake_on_request`). */
  wake: WakeControl | undefined;
}

const SSE = /^text\/event-stream/i;
const SSE_HEADERS = { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } as const;

/**
 * The proxy handler for `/v1/*`: validate → pick a route → cache (hit, or join an identical
 * request in flight) → one upstream request on the pooled client → pass the answer back
 * unchanged (status, body, SSE framing) → store it when the policy allows.
 *
 * Streams are forwarded chunk by chunk as they arrive; a client that goes away aborts the
 * upstream request (the GPU stops generating for nobody); an upstream that fails mid-stream gets
 * an OpenAI error event at an event boundary and a clean end, never a hang.
 */
export function createProxyHandler(deps: ProxyDeps, spec: ApiRouteSpec) {
  const api = spec.validate;
  return async function proxy(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const ctx = request.ctx;
    const upstreamPath = upstreamRequestPath(spec, request);
    let validated: Validated | undefined;
    let body: Buffer | undefined;
    if (api !== undefined) {
      validated = deps.validate(api, request.body);
      body = validated.modified ? Buffer.from(JSON.stringify(validated.body)) : request.rawBody;
    }
    let route = deps.balancer.pick(validated?.model);
    if (route === undefined && deps.wake !== undefined) {
      route = await deps.wake.wakeFor(validated?.model, deps.balancer, ctx.abort);
    }
    if (route === undefined) {
      throw gatewayError(
        'GW_NO_UPSTREAM',
        'no model server is ready: start one with `runpod-llm up`, or set UPSTREAM_URL',
      );
    }
    ctx.routeId = route.id;
    // Behind RunPod's proxy a non-streamed answer travels streamed (see stream-assembly.ts).
    const travel =
      validated === undefined || api === undefined
        ? undefined
        : streamedTravel(api, validated.body, validated.stream, route.streamNonStreaming);
    if (travel !== undefined) body = travel.body;

    let plan: CachePlan | undefined;
    let miss: CacheMiss | undefined;
    const cache = deps.cache;
    if (cache !== undefined && api !== undefined && validated !== undefined) {
      plan =
        spec.cache && statelessAnswer(api, validated.body)
          ? cache.plan(
              api,
              route.model ?? validated.model ?? '',
              validated.body,
              request.headers['cache-control'],
              ctx.keyId,
            )
          : undefined;
      if (plan === undefined || !plan.read) cache.bypassed();
      reply.header('x-cache', plan?.read === true ? 'MISS' : 'BYPASS');
      if (plan?.read === true) {
        const hit = await cache.lookup(plan.key);
        if (hit !== undefined) return sendCached(reply, ctx, hit, false);
      }
      if (plan !== undefined) {
        const flight = cache.join(plan);
        if (flight.lead !== undefined) miss = flight.lead;
        else {
          const shared = await flight.follow;
          if (shared !== undefined && sendShared(reply, ctx, cache, shared)) return reply;
          // The request we joined failed: go upstream ourselves (and lead those arriving now).
          miss = cache.lead(plan);
        }
      }
    }

    try {
      await forward(deps, request, reply, route, validated?.model, upstreamPath, body, plan, miss, travel);
      // eslint-disable-next-line @typescript-eslint/return-await -- a FastifyReply is thenable; returning it tells Fastify the answer is sent
      return reply;
    } finally {
      // Settled already when the answer was shared; otherwise the followers go upstream.
      miss?.fail();
    }
  };
}

async function forward(
  deps: ProxyDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  first: Route,
  model: string | undefined,
  upstreamPath: string,
  body: Buffer | undefined,
  plan: CachePlan | undefined,
  miss: CacheMiss | undefined,
  travel?: StreamedTravel,
): Promise<FastifyReply> {
  const ctx = request.ctx;
  // The client leaving cancels the upstream request (nobody is listening) — unless its answer
  // turns out to be a stream shared with other clients: the fan-out cancels it when all are gone.
  let shared = false;
  let abort = ctx.abort;
  if (miss !== undefined && plan?.write === true && travel === undefined) {
    const own = new RequestAbort();
    ctx.abort.once('abort', () => {
      if (!shared) own.abort();
    });
    abort = own;
  }

  // At most two attempts, on two different routes, and only while nothing has reached the
  // client: a pod that refuses the connection or answers 5xx is skipped for another. Never after
  // the first byte (a stream cannot be replayed), never on a first-byte timeout (the pod may
  // still be generating: a retry would double the GPU work).
  const tried = new Set<string>();
  let route = first;
  let sentAt = performance.now();
  let res: Dispatcher.ResponseData;
  for (;;) {
    tried.add(route.id);
    ctx.routeId = route.id;
    deps.balancer.begin(route.id);
    const target = deps.pools.target(route);
    sentAt = performance.now();
    try {
      res = await target.pool.request({
        path: upstreamPathFor(target.basePath, upstreamPath),
        method: request.method,
        headers: upstreamRequestHeaders(request.headers, route.apiKey, request.id, body?.length ?? -1),
        body: body ?? null,
        signal: abort,
        headersTimeout: deps.timeouts.firstByteMs,
        bodyTimeout: deps.timeouts.idleMs,
      });
    } catch (err) {
      deps.balancer.end(route.id, false);
      ctx.upstreamMs = performance.now() - sentAt;
      if (ctx.clientClosed) return reply.code(499).send();
      const next = isRetriable(err) && tried.size < 2 ? deps.balancer.pick(model, tried) : undefined;
      if (next !== undefined) {
        deps.metrics.upstreamErrors.inc({ kind: 'retried' });
        route = next;
        continue;
      }
      throw noteFailure(deps.metrics, deps.timeouts, ctx, err);
    }
    if (res.statusCode >= 500 && tried.size < 2) {
      const next = deps.balancer.pick(model, tried);
      if (next !== undefined) {
        await res.body.dump().catch(() => undefined);
        deps.balancer.end(route.id, false);
        deps.metrics.upstreamErrors.inc({ kind: 'retried' });
        route = next;
        continue;
      }
    }
    break;
  }
  const served = route.id;
  ctx.release = () => deps.balancer.end(served, res.statusCode < 500 && ctx.upstreamError === undefined);
  // A client gone while the headers came has had its 'close' already: give the slot back now.
  if (ctx.clientClosed) ctx.release();

  const contentType = res.headers['content-type'];
  const isSse = res.statusCode === 200 && typeof contentType === 'string' && SSE.test(contentType);
  if (isSse && travel === undefined) {
    reply.code(200).headers(clientResponseHeaders(res.headers)).headers(SSE_HEADERS);
    const cache = deps.cache;
    if (plan === undefined || miss === undefined || cache === undefined || !plan.write)
      return reply.send(relay(res.body, deps.metrics, deps.timeouts, ctx, sentAt));
    // Cacheable stream: pump upstream into a fan-out that records it; this client is its first listener.
    shared = true;
    const maxBytes = cache.maxEntryBytes;
    const fanout = new StreamFanout({
      maxBytes,
      source: res.body,
      onAllGone: () => abort.abort(),
      cutOff: (atBoundary) => cutOffEvent(atBoundary, maxBytes),
    });
    const listener = fanout.subscribe(() => cutOff(ctx)) as NonNullable<
      ReturnType<StreamFanout['subscribe']>
    >;
    miss.stream(fanout, contentType, () => ctx.usage);
    pumpInto(res.body, fanout, deps.metrics, deps.timeouts, ctx, sentAt);
    return reply.send(listener);
  }

  let buf: Buffer;
  try {
    buf = await readBounded(res.body, deps.maxResponseBytes);
  } catch (err) {
    ctx.upstreamMs = performance.now() - sentAt;
    if (ctx.clientClosed) return reply.code(499).send();
    throw noteFailure(deps.metrics, deps.timeouts, ctx, err);
  }
  ctx.upstreamMs = performance.now() - sentAt;
  let status = res.statusCode;
  const headers = clientResponseHeaders(res.headers);
  if (isSse && travel !== undefined) {
    ({ status, body: buf } = await travel.assemble(buf));
    ctx.assembled = true;
    headers['content-type'] = 'application/json';
  }
  checkStatus(deps.metrics, ctx, status);
  if (status === 200) {
    ctx.usage = usageFrom(buf);
    miss?.answer(headers['content-type'] ?? 'application/json', buf, ctx.usage);
  } else if (status >= 400) {
    buf = toEnvelope(buf);
    if (status === 400) buf = contextLengthError(buf) ?? buf;
    const retry = shouldRetryHeader(status, undefined);
    if (retry !== undefined) headers['x-should-retry'] = retry;
  }
  ctx.bytesOut = buf.length;
  return reply.code(status).headers(headers).send(buf);
}

/**
 * The path (and, on a Responses retrieve, the query) sent upstream: the table's path with the
 * request's id segment, which must look like an id (vLLM's `resp_…`): nothing that could walk
 * to another path on the pod. Only the query parameters the guard lets through (API_QUERIES).
 */
function upstreamRequestPath(spec: ApiRouteSpec, request: FastifyRequest): string {
  if (!spec.path.includes('{')) return spec.path;
  const params = request.params as Record<string, string>;
  const path = spec.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name] ?? '';
    if (!/^[\w.-]{1,200}$/.test(value) || value === '.' || value === '..')
      throw gatewayError('GW_INVALID_REQUEST', `'${name}' is not a valid id`, { param: name });
    return value;
  });
  if (spec.method !== 'GET') return path;
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) {
    if (typeof value === 'string' && queryParamAllowed(spec, name, value)) query.set(name, value);
  }
  const qs = query.toString();
  return qs === '' ? path : `${path}?${qs}`;
}

/**
 * Answers that depend on the body alone. A Responses request is stored on the pod unless it says
 * `store: false` (vLLM's default is true): its id is state, so it is never served from the cache;
 * Responses streams end without `[DONE]` and are never stored either.
 */
function statelessAnswer(route: ValidatedRoute, body: Record<string, unknown>): boolean {
  return (
    route !== 'responses' ||
    (body.store === false &&
      body.stream !== true &&
      body.background !== true &&
      body.previous_response_id == null)
  );
}

/** Failures where the request surely did not start generating on the pod. */
function isRetriable(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return [
    'ECONNREFUSED',
    'ECONNRESET',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ENOTFOUND',
    'EAI_AGAIN',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_SOCKET',
    'UND_ERR_CLOSED',
  ].includes(code);
}

/** Answers with what the request we joined shared; false when its stream can no longer be joined. */
function sendShared(
  reply: FastifyReply,
  ctx: FastifyRequest['ctx'],
  cache: ResponseCache,
  shared: SharedAnswer,
): boolean {
  if (shared.kind === 'json') {
    cache.coalesced();
    sendCached(reply, ctx, { kind: 'json', contentType: shared.contentType, body: shared.body }, true);
    return true;
  }
  const listener = shared.fanout.subscribe(() => cutOff(ctx));
  if (listener === undefined) return false;
  cache.coalesced();
  reply.code(200).header('content-type', 'text/event-stream; charset=utf-8').headers(SSE_HEADERS);
  reply.header('x-cache', 'HIT').header('x-cache-coalesced', '1');
  reply.send(listener);
  return true;
}

/** A listener of a shared stream cut off for falling behind: one line in the security log. */
function cutOff(ctx: FastifyRequest['ctx']): void {
  ctx.event = 'slow_client';
  ctx.errorCode = 'GW_CLIENT_TOO_SLOW';
}

function sendCached(
  reply: FastifyReply,
  ctx: FastifyRequest['ctx'],
  hit: Pick<CachedResponse, 'kind' | 'contentType' | 'body'>,
  coalesced: boolean,
): FastifyReply {
  ctx.bytesOut = hit.body.length;
  reply.code(200).header('content-type', hit.contentType).header('x-cache', 'HIT');
  if (coalesced) reply.header('x-cache-coalesced', '1');
  if (hit.kind === 'sse') reply.headers(SSE_HEADERS);
  return reply.send(hit.body);
}
