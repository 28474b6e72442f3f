import type { IncomingHttpHeaders } from 'node:http';

/*
 * Header hygiene between client and upstream (RFC 9110 §7.6.1). Hop-by-hop headers — Connection,
 * every name Connection lists, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-* —
 * never cross the gateway in either direction.
 *
 * Requests go upstream with an allow-list: the caller's Authorization is replaced by the pod's
 * key, cookies and client hints stay here, and Accept-Encoding is dropped so the upstream answers
 * uncompressed (usage and cache read the body).
 */

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

const REQUEST_ALLOW = ['content-type', 'accept', 'user-agent', 'openai-organization', 'openai-project'];

/** Response headers passed back; the gateway sets its own security, CORS, cache and rate-limit headers. */
const RESPONSE_ALLOW = new Set([
  'content-type',
  'content-encoding',
  'content-language',
  'openai-processing-ms',
  'openai-model',
  'openai-version',
]);

function connectionListed(value: string | string[] | undefined): Set<string> {
  const listed = new Set<string>();
  if (value === undefined) return listed;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '') listed.add(name);
  }
  return listed;
}

export function isHopByHop(name: string, listed: Set<string>): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed.has(name);
}

/** Headers for the upstream request. */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  apiKey: string | undefined,
  requestId: string,
  bodyLength: number,
): Record<string, string> {
  const listed = connectionListed(incoming.connection);
  const out: Record<string, string> = {};
  for (const name of REQUEST_ALLOW) {
    const value = incoming[name];
    if (typeof value === 'string' && !isHopByHop(name, listed)) out[name] = value;
  }
  out['content-type'] ??= 'application/json';
  out['x-request-id'] = requestId;
  if (bodyLength >= 0) out['content-length'] = String(bodyLength);
  if (apiKey !== undefined) out.authorization = `Bearer ${apiKey}`;
  return out;
}

/** Headers of the upstream response that reach the client. */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const listed = connectionListed(upstream.connection);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || !RESPONSE_ALLOW.has(name) || isHopByHop(name, listed)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
