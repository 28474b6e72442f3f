import { request } from 'undici';
import { chatBody } from '../lib/load.js';
import type { ProcessSet } from '../lib/procs.js';
import type { CacheResult, Plan } from '../lib/results.js';
import { startHello, type Target } from '../lib/systems.js';
import { runWrk, wrkScript } from '../lib/wrk.js';

/**
 * Workload 5: cache hits, when the gateway has a response cache. A deterministic request
 * (temperature 0) is sent twice; only when the second answer says `X-Cache: HIT` is hit
 * throughput measured (wrk, closed loop) and set against a Fastify hello-world on the same box.
 * Otherwise the result says why it is not available, and nothing is invented.
 */
export async function cacheWorkload(
  target: Target | undefined,
  plan: Plan['cache'],
  procs: ProcessSet,
  tmp: string,
  log: (line: string) => void,
): Promise<CacheResult> {
  if (target === undefined) return { available: false, note: 'our gateway did not run' };
  const body = chatBody('bench-d0-cache', { temperature: 0 });
  let seen = '';
  try {
    for (let i = 0; i < 2; i++) {
      const res = await request(target.origin + target.path, {
        method: 'POST',
        headers: target.headers,
        body,
      });
      await res.body.dump();
      seen = String(res.headers['x-cache'] ?? '(no X-Cache header)');
    }
  } catch (err) {
    return { available: false, note: `probe failed: ${(err as Error).message}` };
  }
  if (seen !== 'HIT')
    return {
      available: false,
      note: `not available: a repeated temperature-0 request answered X-Cache: ${seen}`,
    };

  const hello = await startHello(procs, tmp);
  try {
    const hitScript = wrkScript(tmp, 'cache-hit', { method: 'POST', body, headers: target.headers });
    const hit = await runWrk({
      url: target.origin + target.path,
      script: hitScript,
      connections: plan.connections,
      durationS: plan.seconds,
    });
    log(`  cache hits: ${Math.round(hit.rps)}/s, p99 ${hit.p99.toFixed(2)} ms, ${hit.errors} errors`);
    const helloScript = wrkScript(tmp, 'hello', { method: 'GET', headers: {} });
    const hw = await runWrk({
      url: `http://127.0.0.1:${hello.port}/`,
      script: helloScript,
      connections: plan.connections,
      durationS: plan.seconds,
    });
    log(`  Fastify hello-world: ${Math.round(hw.rps)}/s, p99 ${hw.p99.toFixed(2)} ms`);
    return {
      available: true,
      note: `wrk closed loop, c=${plan.connections}, ${plan.seconds} s each`,
      hitRps: hit.rps,
      hitP99: hit.p99,
      hitErrors: hit.errors,
      helloRps: hw.rps,
      helloP99: hw.p99,
    };
  } finally {
    await hello.proc.stop();
  }
}
