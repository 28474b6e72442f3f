import type { Usage } from './upstream/usage.js';

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
  /** A non-streamed request that travelled streamed and was assembled (stream-assembly.ts). */
  assembled?: true;
}

export function newContext(start: bigint, route: string): RequestContext {
  return { start, route, keyId: undefined, routeId: undefined, upstreamMs: undefined, ttfbMs: undefined, bytesOut: 0, usage: undefined, upstreamError: undefined, event: undefined, errorCode: undefined, clientClosed: false };
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
