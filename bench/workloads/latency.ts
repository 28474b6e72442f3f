import { chatBody, sequentialLatency } from '../lib/load.js';
import type { LatencyRound, PerSystem, Plan } from '../lib/results.js';
import { summarize } from '../lib/stats.js';
import { type Target, targetCpuMs } from '../lib/systems.js';

/**
 * Workload 1: added latency at concurrency 1, non-streaming, small body, instant upstream.
 * Systems take turns within each round (in a rotating order), so a noisy moment on the shared
 * box hits one round of every system rather than all rounds of one; the added latency is then
 * proxy − direct within the same round.
 */
export async function latencyWorkload(
  targets: Target[],
  plan: Plan['latency'],
  log: (line: string) => void,
): Promise<PerSystem<LatencyRound[]>> {
  const out: PerSystem<LatencyRound[]> = {};
  const body = chatBody('bench-d0');
  for (let round = 0; round < plan.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length] as Target);
    for (const target of order) {
      const cpu0 = targetCpuMs(target);
      const run = await sequentialLatency(target, body, plan.requests, plan.warmup);
      const cpuUs =
        target.proc === undefined
          ? Number.NaN
          : ((targetCpuMs(target) - cpu0) * 1000) / (plan.requests + plan.warmup);
      const s = summarize(run.latencies);
      (out[target.name] ??= []).push({
        p50: s.p50,
        p99: s.p99,
        cpuUs,
        errors: run.errors,
        cacheHits: run.cacheHits,
      });
      log(
        `  latency round ${round + 1}/${plan.rounds} ${target.name}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms${run.errors > 0 ? `, ${run.errors} errors` : ''}`,
      );
    }
  }
  return out;
}
