import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { AppError } from '../../shared/errors.js';
import { gatewayError, renderError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { StreamFanout } from '../upstream/stream-fanout.js';
import { upstreamFailure } from '../upstream/upstream-errors.js';
import { StreamUsageScanner } from '../upstream/usage.js';

type Ctx = FastifyRequest['ctx'];
type Body = Dispatcher.ResponseData['body'];
type Timeouts = { connectMs: number; firstByteMs: number; idleMs: number };

const BLANK_LINE = Buffer.from('\n\n');
const DONE = Buffer.from('data: [DONE]');

/** Records an upstream failure (metric, context) and returns the error to answer with. */
export function noteFailure(metrics: GatewayMetrics, timeouts: Timeouts, ctx: Ctx, err: unknown): AppError {
  if ((err as { code?: string }).code === 'GW_UPSTREAM_BAD_RESPONSE') {
    ctx.upstreamError = 'response_too_large';
    metrics.upstreamErrors.inc({ kind: 'response_too_large' });
    return err as AppError;
  }
  const { error, kind } = upstreamFailure(err, timeouts);
  ctx.upstreamError = kind;
  metrics.upstreamErrors.inc({ kind });
  return error;
}

/** Upstream statuses the client must not see as they are (our key refused, redirects). */
export function checkStatus(metrics: GatewayMetrics, ctx: Ctx, status: number): void {
  if (status === 401 || status === 403) {
    // The pod refused *our* key: a gateway/pod mismatch, not the caller's fault. Passing the
    // 401 on would make the IDE blame its own (valid) gateway key.
    ctx.upstreamError = 'upstream_auth';
    metrics.upstreamErrors.inc({ kind: 'upstream_auth' });
    throw gatewayError(
      'GW_UPSTREAM_AUTH',
      "the model server refused the gateway's key; the route's pod key is out of date (run `runpod-llm status`)",
    );
  }
  if (status >= 300 && status < 400) {
    ctx.upstreamError = 'redirect';
    metrics.upstreamErrors.inc({ kind: 'redirect' });
    throw gatewayError(
      'GW_UPSTREAM_BAD_RESPONSE',
      `the model server answered with a redirect (${status}); redirects are never followed`,
    );
  }
  if (status === 524) {
    // Cloudflare in front of RunPod's pod URL gives up after 100 s without a response byte,
    // while vLLM keeps generating. Its HTML page helps nobody; say what happened, and (via the
    // error table) that a retry would only make the GPU do the same work again.
    ctx.upstreamError = 'proxy_timeout';
    ctx.event = 'upstream_error';
    metrics.upstreamErrors.inc({ kind: 'proxy_timeout' });
    throw gatewayError(
      'GW_UPSTREAM_PROXY_TIMEOUT',
      "RunPod's proxy ended the request after its limit without an answer (HTTP 524, 100 s on RunPod) while the pod kept generating; stream the request (`stream: true`) or let the gateway do it (upstream.stream_non_streaming)",
    );
  }
  if (status >= 500) {
    // Passed through unchanged, but it is still an upstream failure worth an event.
    ctx.upstreamError = `status_${status}`;
    ctx.event = 'upstream_error';
    metrics.upstreamErrors.inc({ kind: 'status_5xx' });
  }
}

export async function readBounded(body: Body, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw gatewayError(
        'GW_UPSTREAM_BAD_RESPONSE',
        `the model server's answer is larger than ${max} bytes (upstream.max_response_bytes)`,
      );
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}

/**
 * vLLM answers errors as a flat `{"object":"error","message",...}`; OpenAI clients read
 * `{"error":{...}}` and would show "(no body)". Same status, same fields, OpenAI's envelope.
 * Anything else (already an envelope, not JSON, large) passes unchanged.
 */
export function toEnvelope(buf: Buffer): Buffer {
  if (buf.length > 65_536 || buf[0] !== 0x7b) return buf;
  try {
    const value = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
    if (value.object !== 'error' || typeof value.message !== 'string') return buf;
    const error = {
      message: value.message,
      type: typeof value.type === 'string' ? value.type : 'invalid_request_error',
      param: typeof value.param === 'string' ? value.param : null,
      code: typeof value.code === 'string' ? value.code : null,
    };
    return Buffer.from(JSON.stringify({ error }));
  } catch {
    return buf;
  }
}

/** The error event that ends a failed stream, starting on an event boundary. */
function errorEvent(error: AppError, atBoundary: boolean): Buffer {
  return Buffer.from(`${atBoundary ? '' : '\n\n'}data: ${JSON.stringify(renderError(error))}\n\n`);
}

/** Per-chunk bookkeeping shared by both stream paths. */
class StreamWatch {
  readonly scanner = new StreamUsageScanner();
  atBoundary = true;
  sawDone = false;
  constructor(private readonly ctx: Ctx) {}
  see(chunk: Buffer): void {
    const ctx = this.ctx;
    if (ctx.ttfbMs === undefined) ctx.ttfbMs = Number(process.hrtime.bigint() - ctx.start) / 1e6;
    ctx.bytesOut += chunk.length;
    this.scanner.push(chunk);
    this.atBoundary = chunk.length >= 2 && chunk.subarray(chunk.length - 2).equals(BLANK_LINE);
    if (!this.sawDone && chunk.indexOf(DONE) >= 0) this.sawDone = true;
  }
}

/**
 * Forwards SSE chunks untouched, with backpressure; on upstream failure, ends with one OpenAI
 * error event.
 *
 * Chunks go from the upstream body's 'data' events straight into the Readable that Fastify pipes
 * to the client (no async iterator, no generator: one microtask hop less per chunk). When that
 * Readable is full (the client reads slower than the pod writes) the upstream body is paused,
 * and resumed when the client has drained it. Fastify destroys the Readable when the client goes
 * away; that destroys the upstream body (and the request's abort signal cancels it upstream).
 */
export function relay(
  body: Body,
  metrics: GatewayMetrics,
  timeouts: Timeouts,
  ctx: Ctx,
  sentAt: number,
): Readable {
  const watch = new StreamWatch(ctx);
  let upstreamDone = false;
  const settle = (): void => {
    if (upstreamDone) return;
    upstreamDone = true;
    ctx.upstreamMs = performance.now() - sentAt;
    ctx.usage = watch.scanner.usage;
  };
  const out = new Readable({
    highWaterMark: 16 * 1024,
    read() {
      body.resume();
    },
    destroy(err, callback) {
      settle();
      body.destroy();
      callback(err);
    },
  });
  body.on('data', (chunk: Buffer) => {
    watch.see(chunk);
    if (!out.push(chunk)) body.pause();
  });
  body.on('end', () => {
    if (upstreamDone) return;
    settle();
    out.push(null);
  });
  body.on('error', (err: Error) => {
    if (upstreamDone) return;
    settle();
    if (out.destroyed) return;
    if (!ctx.clientClosed) {
      const failure = noteFailure(metrics, timeouts, ctx, err);
      ctx.event = 'upstream_error';
      ctx.errorCode = failure.code;
      out.push(errorEvent(failure, watch.atBoundary));
    }
    out.push(null);
  });
  return out;
}

/**
 * Pumps an upstream SSE body into a fan-out (cacheable streams), which pauses and resumes the
 * body as its listeners read (see stream-fanout.ts). The stream counts as complete, and so
 * storable, only when it ended normally and carried `data: [DONE]`; upstream time and usage are
 * in the context before the fan-out settles.
 */
export function pumpInto(
  body: Body,
  fanout: StreamFanout,
  metrics: GatewayMetrics,
  timeouts: Timeouts,
  ctx: Ctx,
  sentAt: number,
): void {
  const watch = new StreamWatch(ctx);
  let over = false;
  const end = (ok: boolean, tail?: Buffer): void => {
    if (over) return;
    over = true;
    ctx.upstreamMs = performance.now() - sentAt;
    ctx.usage = watch.scanner.usage;
    fanout.finish(ok, tail);
  };
  body.on('data', (chunk: Buffer) => {
    watch.see(chunk);
    fanout.push(chunk);
  });
  body.on('end', () => end(watch.sawDone));
  body.on('error', (err: Error) => {
    // Every listener left and the fan-out cancelled the request: nobody to tell.
    if (fanout.abandoned) return end(false);
    const failure = noteFailure(metrics, timeouts, ctx, err);
    ctx.event = 'upstream_error';
    ctx.errorCode = failure.code;
    end(false, errorEvent(failure, watch.atBoundary));
  });
}

/**
 * The error event that ends a listener of a shared stream cut off for falling more than
 * `maxBytes` behind the others (stream-fanout.ts).
 */
export function cutOffEvent(atBoundary: boolean, maxBytes: number): Buffer {
  // The stream has begun with 200: the status only sets the envelope's type.
  const error = new AppError(
    'GW_CLIENT_TOO_SLOW',
    `this client read the stream too slowly: it fell more than ${maxBytes} bytes behind the other clients sharing it and was cut off; retry the request`,
  );
  return errorEvent(error, atBoundary);
}
