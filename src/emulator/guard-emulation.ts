import { API_ROUTES, type ApiRouteSpec, queryAllowed } from '../gateway/routes/route-table.js';
import type { VllmStandinHandler } from './vllm-standin.js';

/*
 * What a guarded pod (src/guard/guard.py in front of vLLM) looks like from its public URL,
 * emulated in-process so the emulator's guarded pods close vLLM's open routes as real ones do.
 * The real guard is tested against the stand-in in test/guard; this mirrors its decisions:
 * the exact request target (no decoding) must be one of the route table's
 * (src/gateway/routes/route-table.ts), with a query string only as its API_QUERIES allows (the
 * guard's QUERIES), the key must be exactly `Bearer <key>`, everything else is 404/401 and never
 * reaches vLLM. The manager's lease
 * route (`POST /runpod-llm/lease`) answers as guard v3 does with the key: 200 JSON with the guard's
 * version and whether the pod can stop itself (`ok`, or `refused` when the emulator's pod-scoped
 * keys cannot stop their pod: `podKeyCanStop: false`).
 */

const ALLOWED = new Map<string, ApiRouteSpec>(
  API_ROUTES.filter((r) => !r.path.includes('{')).map((r) => [`${r.method} ${r.path}`, r] as const),
);
/** The table's `{id}` routes: one segment of [A-Za-z0-9_.-], not "." or "..", as guard.py matches. */
const PATTERNS = API_ROUTES.filter((r) => r.path.includes('{')).map(
  (r) =>
    [
      new RegExp(`^${r.method} ${r.path.replace(/\{\w+\}/g, '(?!\\.{1,2}(?:/|$))[A-Za-z0-9_.-]{1,200}')}$`),
      r,
    ] as const,
);

/** guard.py's allows_target: `target` (`METHOD /path?query`) is a table route, its query allowed. */
function allowedTarget(target: string): boolean {
  const mark = target.indexOf('?');
  const path = mark < 0 ? target : target.slice(0, mark);
  const route = ALLOWED.get(path) ?? PATTERNS.find(([p]) => p.test(path))?.[1];
  if (route === undefined) return false;
  return mark < 0 || queryAllowed(route, target.slice(mark + 1));
}

export function guardStandin(
  standin: VllmStandinHandler,
  key: string,
  selfStop: () => 'ok' | 'refused' = () => 'ok',
): VllmStandinHandler {
  return {
    ...standin,
    handler(req, res, path) {
      const target = `${req.method ?? ''} ${path}`;
      if (target === 'GET /health') return standin.handler(req, res, path);
      const lease = target === 'POST /runpod-llm/lease';
      if (!lease && !allowedTarget(target)) return reply(res, 404, '{"error":"Not Found"}');
      if (req.headers.authorization !== `Bearer ${key}`) return reply(res, 401, '{"error":"Unauthorized"}');
      if (lease) {
        // The lease is renewed; the emulation does not stop pods itself (test/guard runs the real guard for that).
        return reply(res, 200, JSON.stringify({ guard: '3', self_stop: selfStop() }));
      }
      standin.handler(req, res, path);
    },
  };
}

function reply(res: Parameters<VllmStandinHandler['handler']>[1], status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    server: 'guard',
  });
  res.end(body);
}
