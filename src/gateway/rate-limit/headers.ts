import type { RateDecision } from './limiter-store.js';

/**
 * Rate-limit response headers: the de-facto `X-RateLimit-*` trio and the IETF draft's
 * `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers: `q` quota, `w` window
 * seconds, `r` remaining, `t` seconds until quota is restored).
 */
export function rateLimitHeaders(decision: RateDecision, windowSeconds: number): Record<string, string> {
  const policy = {
    'x-ratelimit-limit': String(decision.limit),
    'ratelimit-policy': `"default";q=${decision.limit};w=${windowSeconds}`,
  };
  // Not counted (limiter store unreachable, fail-open): the policy stands, the count is unknown.
  if (decision.remaining === undefined || decision.resetMs === undefined) return policy;
  const reset = Math.ceil(decision.resetMs / 1000);
  return {
    'x-ratelimit-limit': String(decision.limit),
    'x-ratelimit-remaining': String(decision.remaining),
    'x-ratelimit-reset': String(reset),
    'ratelimit-policy': `"default";q=${decision.limit};w=${windowSeconds}`,
    ratelimit: `"default";r=${decision.remaining};t=${reset}`,
  };
}

/** The tighter of two decisions (fewer requests left; a refusal wins; a counted one beats an uncounted one). */
export function tighter(a: RateDecision, b: RateDecision): RateDecision {
  if (a.allowed !== b.allowed) return a.allowed ? b : a;
  if (b.remaining === undefined) return a;
  if (a.remaining === undefined) return b;
  return a.remaining <= b.remaining ? a : b;
}
