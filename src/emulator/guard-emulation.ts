import type { VllmStandinHandler } from './vllm-standin.js';

/**
 * What a guarded pod (src/guard/guard.py in front of vLLM) looks like from its public URL,
 * emulated in-process so the emulator's guarded pods close vLLM's open routes as real ones do.
 * The real guard is tested against the stand-in in test/guard; this mirrors its decisions:
 * the exact request target (no decoding, no query) must be one of five routes, the key must be
 * exactly `Bearer <key>`, everything else is 404/401 and never reaches vLLM. The manager's lease
 * route (`POST /runpod-llm/lease`) answers 204 with the key.
 */
const ALLOWED = new Set(['GET /v1/models', 'POST /v1/chat/completions', 'POST /v1/completions', 'POST /v1/embeddings']);

export function guardStandin(standin: VllmStandinHandler, key: string): VllmStandinHandler {
  return {
    ...standin,
    handler(req, res, path) {
      const target = `${req.method ?? ''} ${path}`;
      if (target === 'GET /health') return standin.handler(req, res, path);
      const lease = target === 'POST /runpod-llm/lease';
      if (!ALLOWED.has(target) && !lease) return reply(res, 404, '{"error":"Not Found"}');
      if (req.headers.authorization !== `Bearer ${key}`) return reply(res, 401, '{"error":"Unauthorized"}');
      if (lease) {
        // The lease is renewed; the emulation does not stop pods itself (test/guard runs the real guard for that).
        res.writeHead(204, { server: 'guard' });
        return res.end();
      }
      standin.handler(req, res, path);
    },
  };
}

function reply(res: Parameters<VllmStandinHandler['handler']>[1], status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), server: 'guard' });
  res.end(body);
}
