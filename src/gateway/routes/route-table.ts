/*
 * The one table of API routes the gateway serves and the pod guard lets through.
 *
 * The gateway registers exactly these routes (behind the gateway key, with the per-key limit,
 * the access log, metrics and usage), and the guard's `ROUTES` allow-list in
 * src/guard/guard.py holds the same (method, path) pairs; test/gateway/route-table.test.ts
 * imports guard.py with python3 and proves the two sets are equal. Paths use vLLM's own
 * spelling, `{id}` standing for one path segment (the guard matches it the same way).
 *
 * `validate`: the request shape the gateway checks before forwarding (absent: forwarded as
 * is, vLLM checks it). `cache`: whether an answer may be reused at all — only for requests whose
 * answer depends on nothing but the body (no server-side state): the generation routes under
 * `cache_mode`'s rules, embeddings/rerank/score always, Responses only with `store: false` (a
 * stored response is state: its id must exist on the pod that made it).
 */

/** The request shapes the gateway validates, one per kind of API route. */
export type ValidatedRoute =
  'chat' | 'completions' | 'embeddings' | 'responses' | 'rerank' | 'score' | 'tokenize' | 'detokenize';

export interface ApiRouteSpec {
  method: 'GET' | 'POST';
  /** The path clients call on the gateway, and vLLM's path on the pod (`{id}`: one segment). */
  path: string;
  /** Metric and log label (bounded). */
  label: string;
  validate?: ValidatedRoute;
  cache: boolean;
}

export const API_ROUTES: readonly ApiRouteSpec[] = Object.freeze([
  { method: 'GET', path: '/v1/models', label: 'models', cache: false },
  { method: 'POST', path: '/v1/chat/completions', label: 'chat', validate: 'chat', cache: true },
  { method: 'POST', path: '/v1/completions', label: 'completions', validate: 'completions', cache: true },
  { method: 'POST', path: '/v1/embeddings', label: 'embeddings', validate: 'embeddings', cache: true },
  // The Responses API (vllm/entrypoints/openai/responses/api_router.py): create, retrieve,
  // cancel. vLLM has no DELETE /v1/responses/{id}, so neither do we.
  { method: 'POST', path: '/v1/responses', label: 'responses', validate: 'responses', cache: true },
  { method: 'GET', path: '/v1/responses/{id}', label: 'responses', cache: false },
  { method: 'POST', path: '/v1/responses/{id}/cancel', label: 'responses', cache: false },
  { method: 'POST', path: '/v1/rerank', label: 'rerank', validate: 'rerank', cache: true },
  { method: 'POST', path: '/v1/score', label: 'score', validate: 'score', cache: true },
  // Cheap and deterministic, but not worth a cache entry (or a slot of someone's answer).
  { method: 'POST', path: '/tokenize', label: 'tokenize', validate: 'tokenize', cache: false },
  { method: 'POST', path: '/detokenize', label: 'detokenize', validate: 'detokenize', cache: false },
] satisfies ApiRouteSpec[]);

/**
 * The query strings a table route may carry, by `METHOD path`: each parameter at most once, its
 * value whole against its pattern (nothing decoded); any other query is refused. The guard's
 * `QUERIES` in src/guard/guard.py holds the same (test/gateway/routes-table.test.ts proves it),
 * the emulated guard (src/emulator/guard-emulation.ts) reads this one. The Responses API's
 * retrieval: `GET /v1/responses/{id}?stream=true&starting_after=N`.
 */
export const API_QUERIES: Readonly<Record<string, Readonly<Record<string, string>>>> = Object.freeze({
  'GET /v1/responses/{id}': Object.freeze({ stream: 'true|false', starting_after: '[0-9]{1,9}' }),
});

/** API_QUERIES's patterns, each matching a whole value (Python's `fullmatch`). */
const QUERY_PATTERNS = new Map(
  Object.entries(API_QUERIES).map(([route, params]) => [
    route,
    new Map(Object.entries(params).map(([name, source]) => [name, new RegExp(`^(?:${source})$`)])),
  ]),
);

/**
 * Whether `query` (after the `?`, raw) is one `route` may carry under API_QUERIES: `name=value`
 * pairs joined by `&`, no name twice, no name the route's entry lacks, each value matching.
 */
export function queryAllowed(route: Pick<ApiRouteSpec, 'method' | 'path'>, query: string): boolean {
  const seen = new Set<string>();
  for (const pair of query.split('&')) {
    const at = pair.indexOf('=');
    const name = at < 0 ? pair : pair.slice(0, at);
    if (at < 0 || seen.has(name) || !queryParamAllowed(route, name, pair.slice(at + 1))) return false;
    seen.add(name);
  }
  return true;
}

/** Whether API_QUERIES lets `route` carry the parameter `name` with this (raw) value. */
export function queryParamAllowed(
  route: Pick<ApiRouteSpec, 'method' | 'path'>,
  name: string,
  value: string,
): boolean {
  return QUERY_PATTERNS.get(`${route.method} ${route.path}`)?.get(name)?.test(value) === true;
}

/** Fastify's spelling of a table path (`{id}` → `:id`). */
export function fastifyPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

/**
 * The upstream path for a request: the route's base URL ends in `/v1` (`…/v1`, or
 * `/proxy/pod-8000/v1` behind a path-routing proxy); `/v1/x` goes to `base + /x`, a root path
 * (`/tokenize`) to the base without its `/v1`. `requestUrl` carries the real id segments and any
 * query string (e.g. `?stream=true&starting_after=3` on a retrieve).
 */
export function upstreamPathFor(basePath: string, requestUrl: string): string {
  if (requestUrl.startsWith('/v1/')) return basePath + requestUrl.slice(3);
  const root = basePath.endsWith('/v1') ? basePath.slice(0, -3) : basePath;
  return root + requestUrl;
}

/** The table as `[method, path]` pairs, sorted (what the guard's ROUTES must equal). */
export function routePairs(): Array<[string, string]> {
  return API_ROUTES.map((r): [string, string] => [r.method, r.path]).sort((a, b) =>
    a[1] === b[1] ? a[0].localeCompare(b[0]) : a[1].localeCompare(b[1]),
  );
}
