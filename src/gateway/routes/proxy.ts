import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { gatewayError, renderError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../upstream/headers.js';
import type { UpstreamPools } from '../upstream/pools.js';
import type { RouteSource } from '../upstream/route-source.js';
import { upstreamFailure } from '../upstream/upstream-errors.js';
import { StreamUsageScanner, usageFrom } from '../upstream/usage.js';
import type { ApiRoute, Validated } from '../validation/validate.js';

export interface ProxyDeps {
  routes: RouteSource;
  pools: UpstreamPools;
  validate: (route: ApiRoute, body: unknown) => Validated;
  metrics: GatewayMetrics;
  timeouts: { connectMs: number; firstByteMs: number; idleMs: number };
  maxResponseBytes: number;
}

const SSE = /^text\/event-stream/i;
const BLANK_LINE = Buffer.from('\n\n');

/**
 * The proxy handler for `/v1/*`: validate → pick a route → one upstream request on the pooled
 * client → pass the answer back unchanged (status, body, SSE framing).
 *
 * Streams are forwarded chunk by chunk as they arrive, with backpressure; a client that goes
 * away aborts the upstream request (the GPU stops generating for nobody); an upstream that fails
 * mid-stream gets an OpenAI error event at an event boundary and a clean end, never a hang.
 */
export function createProxyHandler(deps: ProxyDeps, upstreamPath: string, api: ApiRoute | undefined) {
  return async function proxy(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const ctx = request.ctx;
    let body: Buffer | undefined;
    let model: string | undefined;
    if (api !== undefined) {
      const validated = deps.validate(api, request.body);
      body = validated.modified ? Buffer.from(JSON.stringify(validated.body)) : request.rawBody;
      model = validated.model;
    }
    const route = deps.routes.pick(model);
    if (route === undefined) {
      throw gatewayError('GW_NO_UPSTREAM', 'no model server is ready: start one with `runpod-llm up`, or set UPSTREAM_URL');
    }
    const target = deps.pools.target(route);
    ctx.routeId = route.id;
    const abort = new AbortController();
    const raw = reply.raw;
    // The client's socket closing before our response finished means nobody is listening:
    // cancel upstream. (request 'close' fires once the body is read, so listen on the response.)
    raw.once('close', () => {
      if (!raw.writableFinished) {
        ctx.clientClosed = true;
        abort.abort();
      }
    });

    const sentAt = performance.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await target.pool.request({
        path: target.basePath + upstreamPath,
        method: request.method as Dispatcher.HttpMethod,
        headers: upstreamRequestHeaders(request.headers, route.apiKey, request.id, body?.length ?? -1),
        body: body ?? null,
        signal: abort.signal,
        headersTimeout: deps.timeouts.firstByteMs,
        bodyTimeout: deps.timeouts.idleMs,
      });
    } catch (err) {
      ctx.upstreamMs = performance.now() - sentAt;
      if (ctx.clientClosed) return reply.code(499).send();
      throw noteFailure(deps, ctx, err);
    }

    const contentType = res.headers['content-type'];
    if (res.statusCode === 200 && typeof contentType === 'string' && SSE.test(contentType)) {
      reply.code(200).headers(clientResponseHeaders(res.headers));
      reply.header('cache-control', 'no-cache').header('x-accel-buffering', 'no');
      return reply.send(relay(res.body, deps, ctx, sentAt));
    }

    let buf: Buffer;
    try {
      buf = await readBounded(res.body, deps.maxResponseBytes);
    } catch (err) {
      ctx.upstreamMs = performance.now() - sentAt;
      if (ctx.clientClosed) return reply.code(499).send();
      if ((err as { code?: string }).code === 'GW_UPSTREAM_BAD_RESPONSE') {
        ctx.upstreamError = 'response_too_large';
        deps.metrics.upstreamErrors.inc({ kind: 'response_too_large' });
        throw err;
      }
      throw noteFailure(deps, ctx, err);
    }
    ctx.upstreamMs = performance.now() - sentAt;

    if (res.statusCode === 401 || res.statusCode === 403) {
      // The pod refused *our* key: a gateway/pod mismatch, not the caller's fault. Passing the
      // 401 on would make the IDE blame its own (valid) gateway key.
      ctx.upstreamError = 'upstream_auth';
      deps.metrics.upstreamErrors.inc({ kind: 'upstream_auth' });
      throw gatewayError('GW_UPSTREAM_AUTH', 'the model server refused the gateway\'s key; the route\'s pod key is out of date (run `runpod-llm status`)');
    }
    if (res.statusCode >= 300 && res.statusCode < 400) {
      ctx.upstreamError = 'redirect';
      deps.metrics.upstreamErrors.inc({ kind: 'redirect' });
      throw gatewayError('GW_UPSTREAM_BAD_RESPONSE', `the model server answered with a redirect (${res.statusCode}); redirects are never followed`);
    }
    if (res.statusCode >= 500) {
      ctx.upstreamError = `status_${res.statusCode}`;
      deps.metrics.upstreamErrors.inc({ kind: 'status_5xx' });
    }
    if (res.statusCode === 200) ctx.usage = usageFrom(buf);
    else if (res.statusCode >= 400) buf = toEnvelope(buf);
    ctx.bytesOut = buf.length;
    return reply.code(res.statusCode).headers(clientResponseHeaders(res.headers)).send(buf);
  };
}

/**
 * vLLM answers errors as a flat `{"object":"error","message",...}`; OpenAI clients read
 * `{"error":{...}}` and would show "(no body)". Same status, same fields, OpenAI's envelope.
 * Anything else (already an envelope, not JSON, large) passes unchanged.
 */
function toEnvelope(buf: Buffer): Buffer {
  if (buf.length > 65_536 || buf[0] !== 0x7b) return buf;
  try {
    const value = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
    if (value.object !== 'error' || typeof value.message !== 'string') return buf;
    const error = { message: value.message, type: typeof value.type === 'string' ? value.type : 'invalid_request_error', param: typeof value.param === 'string' ? value.param : null, code: typeof value.code === 'string' ? value.code : null };
    return Buffer.from(JSON.stringify({ error }));
  } catch {
    return buf;
  }
}

function noteFailure(deps: ProxyDeps, ctx: FastifyRequest['ctx'], err: unknown): Error {
  const { error, kind } = upstreamFailure(err, deps.timeouts);
  ctx.upstreamError = kind;
  deps.metrics.upstreamErrors.inc({ kind });
  return error;
}

async function readBounded(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw gatewayError('GW_UPSTREAM_BAD_RESPONSE', `the model server's answer is larger than ${max} bytes (upstream.max_response_bytes)`);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}

/** Forwards SSE chunks untouched; on upstream failure, ends with one OpenAI error event. */
function relay(body: Dispatcher.ResponseData['body'], deps: ProxyDeps, ctx: FastifyRequest['ctx'], sentAt: number): Readable {
  const scanner = new StreamUsageScanner();
  async function* events(): AsyncGenerator<Buffer> {
    let atBoundary = true;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (ctx.ttfbMs === undefined) ctx.ttfbMs = Number(process.hrtime.bigint() - ctx.start) / 1e6;
        ctx.bytesOut += chunk.length;
        scanner.push(chunk);
        atBoundary = chunk.length >= 2 && chunk.subarray(chunk.length - 2).equals(BLANK_LINE);
        yield chunk;
      }
    } catch (err) {
      if (ctx.clientClosed) return;
      const failure = noteFailure(deps, ctx, err);
      const event = `${atBoundary ? '' : '\n\n'}data: ${JSON.stringify(renderError(failure as Parameters<typeof renderError>[0]))}\n\n`;
      ctx.event = 'upstream_error';
      ctx.errorCode = (failure as { code?: string }).code;
      yield Buffer.from(event);
    } finally {
      ctx.upstreamMs = performance.now() - sentAt;
      ctx.usage = scanner.usage;
    }
  }
  return Readable.from(events(), { objectMode: false, highWaterMark: 16 * 1024 });
}
