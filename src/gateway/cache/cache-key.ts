import { hash } from 'node:crypto';

/**
 * The cache key: SHA-256 over a canonical form of the route, the served model and the WHOLE
 * request body with object keys sorted at every depth. Nothing is normalised away and no default
 * is filled in: `temperature` omitted (OpenAI's default is 1.0) and `temperature: 0` are
 * different requests, as are `stream: true` and `false`. Two requests share a key only when they
 * are the same request. `partition` (cache_scope `key`: the gateway key's id) gives each caller
 * entries of its own; without one the key is the shared one.
 */
export function cacheKey(route: string, model: string, body: unknown, partition?: string): string {
  // One-shot hash of the concatenation: the same digest as updating with each part in turn
  // (keys stored on disk stay valid), without a Hash object per request.
  const canonical = `${route}\u0000${model}\u0000${canonicalJson(body)}`;
  return hash(
    'sha256',
    partition === undefined ? canonical : `${canonical}\u0000partition:${partition}`,
    'hex',
  );
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

export type CacheMode = 'deterministic' | 'all' | 'off';

/**
 * Whether an answer may be reused. `deterministic`: embeddings, rerank and score always; generations only with
 * `temperature: 0` or an integer `seed`, and one choice (`n`, `best_of` absent or 1) — anything
 * else samples, and replaying one sample would silently remove the variety the caller asked for.
 */
export function isCacheable(mode: CacheMode, route: string, body: Record<string, unknown>): boolean {
  if (mode === 'off') return false;
  if (mode === 'all' || route === 'embeddings' || route === 'rerank' || route === 'score') return true;
  const oneChoice =
    (body.n === undefined || body.n === null || body.n === 1) &&
    (body.best_of === undefined || body.best_of === null || body.best_of === 1);
  const fixed = body.temperature === 0 || Number.isInteger(body.seed);
  return oneChoice && fixed;
}

/** `Cache-Control` request directives the cache honours. */
export function cacheDirectives(header: string | undefined): { noCache: boolean; noStore: boolean } {
  if (header === undefined) return { noCache: false, noStore: false };
  const value = header.toLowerCase();
  return {
    noCache: /(^|[\s,])no-cache($|[\s,=])/.test(value),
    noStore: /(^|[\s,])no-store($|[\s,])/.test(value),
  };
}
