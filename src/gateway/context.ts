import { EventEmitter } from 'node:events';
import type { Usage } from './upstream/usage.js';

/**
 * The request's abort signal: fired once, when the client goes away before its response is
 * finished (the start hook's one 'close' listener). The wake wait reads `aborted`; the upstream
 * request takes it as its `signal` (undici accepts an EventEmitter that emits 'abort' and reads
 * `aborted` before it starts; an AbortController + AbortSignal per request costs ≈ 2 µs more).
 * `aborted` stays true, so a retry started after the client left is aborted at once.
 */
export class RequestAbort extends EventEmitter {
  aborted = false;
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

/** Per-request facts gathered on the way and read once by the access log and the metrics. */
export interface RequestContext {
  /** process.hrtime.bigint() at arrival. */
  start: bigint;
  /** Bounded label: chat | completions | embeddings | models | health | metrics | other. */
  route: string;
  keyId: string | undefined;
  /** The route the request was forwarded to. */
  routeId: string | undefined;
  upstreamMs: number | undefined;
  /** Streams: ms from arrival to the first byte sent. */
  ttfbMs: number | undefined;
  bytesOut: number;
  usage: Usage | undefined;
  upstreamError: string | undefined;
  /** The security event this request raised, logged once. */
  event: string | undefined;
  errorCode: string | undefined;
  clientClosed: boolean;
  /** Fired when the client goes away before its response is finished. */
  abort: RequestAbort;
  /**
   * What the request holds until its response is over (the route's in-flight slot), given back
   * by the start hook's 'close' listener.
   */
  release: (() => void) | undefined;
  /** A non-streamed request that travelled streamed and was assembled (stream-assembly.ts). */
  assembled?: true;
}

export function newContext(start: bigint, route: string): RequestContext {
  return {
    start,
    route,
    keyId: undefined,
    routeId: undefined,
    upstreamMs: undefined,
    ttfbMs: undefined,
    bytesOut: 0,
    usage: undefined,
    upstreamError: undefined,
    event: undefined,
    errorCode: undefined,
    clientClosed: false,
    abort: new RequestAbort(),
    release: undefined,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    ctx: RequestContext;
    rawBody: Buffer | undefined;
  }
  interface FastifyContextConfig {
    /** Which handler family the route belongs to (drives auth and limits). */
    kind?: 'api' | 'health' | 'metrics' | 'public';
    /** Metric/log label. */
    label?: string;
  }
}
