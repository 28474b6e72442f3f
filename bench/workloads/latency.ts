import { chatBody, sequentialLatency } from '../lib/load.js';
import type { LatencyRound, PerSystem, Plan } from '../lib/results.js';
import { summarize } from '../lib/stats.js';
import { type Target, targetCpuMs } from '../lib/systems.js';

/**
 * Workload 1: added latency at concurrency 1, non-streaming, small body, instant upstream; then,
 * on the same system in the same turn, the time to the first SSE event of streamed requests at
 * concurrency 1 (what a user waits for before the first token when nothing else is going on).
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
  const streamed = chatBody('bench-d0-n8-p0', { stream: true });
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
      const first = await sequentialLatency(
        target,
        streamed,
        Math.max(100, Math.round(plan.requests / 5)),
        Math.max(20, Math.round(plan.warmup / 5)),
        'first-byte',
      );
      const t = summarize(first.latencies);
      (out[target.name] ??= []).push({
        p50: s.p50,
        p99: s.p99,
        cpuUs,
        errors: run.errors,
        cacheHits: run.cacheHits,
        ttftP50: t.p50,
        ttftP99: t.p99,
        ttftErrors: first.errors,
      });
      log(
        `  latency round ${round + 1}/${plan.rounds} ${target.name}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, streamed first event p50 ${t.p50.toFixed(3)} ms${run.errors + first.errors > 0 ? `, ${run.errors + first.errors} errors` : ''}`,
      );
    }
  }
  return out;
}
