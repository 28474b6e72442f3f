import { chatBody, openLoop, type OpenLoopResult } from '../lib/load.js';
import type { PerSystem, Plan, ThroughputRun, ThroughputStep } from '../lib/results.js';
import { errorRate, median, percentile } from '../lib/stats.js';
import { type Target, targetCpuMs } from '../lib/systems.js';
import { runWrk, wrkScript } from '../lib/wrk.js';

/*
 * Workload 2: the highest constant request rate a system sustains with a 20 ms upstream, with
 * p99 < 1 s and < 0.1 % errors.
 *
 * A closed-loop wrk run first finds the neighbourhood (and is reported as the closed-loop peak);
 * then constant-rate steps climb from a fraction of it until one fails, and bisection steps narrow
 * the boundary. Short steps flatter an overloaded system (a queue growing for 2 s adds little
 * p99), so a step also fails when its latency is still climbing at the end: the median of the
 * last quarter above twice the first quarter's plus 50 ms.
 */

const P99_LIMIT_MS = 1_000;
const ERROR_LIMIT = 0.001;

export function judgeStep(r: OpenLoopResult): ThroughputStep {
  const ok = r.byDue.filter((v) => !Number.isNaN(v));
  const p50 = percentile(ok, 50);
  const p99 = r.errors > 0 && ok.length === 0 ? Number.NaN : percentile(ok, 99);
  const errRate = errorRate(r.errors, r.sent);
  const quarter = Math.floor(r.byDue.length / 4);
  const first = median(Array.from(r.byDue.subarray(0, quarter)));
  const last = median(Array.from(r.byDue.subarray(r.byDue.length - quarter)));
  let reason: string | undefined;
  if (r.achievedRate < r.rate * 0.95) reason = `generator offered only ${Math.round(r.achievedRate)}/s`;
  else if (errRate >= ERROR_LIMIT) reason = `errors ${(errRate * 100).toFixed(2)} %`;
  else if (!(p99 < P99_LIMIT_MS)) reason = `p99 ${Math.round(p99)} ms`;
  else if (last > first * 2 + 50)
    reason = `queue growing (median ${Math.round(first)} → ${Math.round(last)} ms)`;
  return {
    rate: r.rate,
    achievedRate: r.achievedRate,
    p50,
    p99,
    errorRate: errRate,
    pass: reason === undefined,
    ...(reason === undefined ? {} : { reason }),
  };
}

async function climb(
  target: Target,
  plan: Plan['throughput'],
  startRate: number,
  body: string,
  log: (line: string) => void,
): Promise<Pick<ThroughputRun, 'maxRate' | 'boundBy' | 'steps'>> {
  const steps: ThroughputStep[] = [];
  const step = async (rate: number): Promise<ThroughputStep | undefined> => {
    if (steps.length >= plan.maxSteps) return undefined;
    const r = await openLoop(target, {
      rate: Math.round(rate),
      durationMs: plan.stepMs,
      warmupMs: plan.warmupMs,
      timeoutMs: 3_000,
      body,
      ...(target.maxConnections === undefined ? {} : { connections: target.maxConnections }),
    });
    const judged = judgeStep(r);
    steps.push(judged);
    log(
      `    ${target.name} @ ${judged.rate}/s: p99 ${judged.p99.toFixed(1)} ms, errors ${(judged.errorRate * 100).toFixed(2)} % → ${judged.pass ? 'pass' : `fail (${judged.reason ?? ''})`}`,
    );
    // Let sockets and queues from an overloaded step settle before the next one.
    await new Promise((res) => setTimeout(res, judged.pass ? 300 : 1_500));
    return judged;
  };
  let best = 0;
  let failAt = Number.NaN;
  let generatorBound = false;
  let rate = Math.max(50, startRate);
  for (;;) {
    const s = await step(rate);
    if (s === undefined) break;
    if (!s.pass) {
      failAt = rate;
      generatorBound = s.reason?.startsWith('generator') === true;
      break;
    }
    best = rate;
    rate *= plan.factor;
  }
  if (best === 0 && !generatorBound) {
    // Even half the closed-loop peak failed: walk down instead.
    for (rate = startRate / 2; rate >= 25 && best === 0; rate /= 2) {
      const s = await step(rate);
      if (s === undefined) break;
      if (s.pass) best = rate;
      else failAt = rate;
    }
  }
  if (!generatorBound && best > 0 && Number.isFinite(failAt)) {
    for (let i = 0; i < plan.bisect; i++) {
      const mid = (best + failAt) / 2;
      if (failAt - best < best * 0.05) break;
      const s = await step(mid);
      if (s === undefined) break;
      if (s.pass) best = mid;
      else if (s.reason?.startsWith('generator') === true) {
        generatorBound = true;
        break;
      } else failAt = mid;
    }
  }
  const boundBy = generatorBound ? 'generator' : best > 0 && Number.isNaN(failAt) ? 'steps' : undefined;
  return { maxRate: Math.round(best), steps, ...(boundBy === undefined ? {} : { boundBy }) };
}

export async function throughputWorkload(
  targets: Target[],
  plan: Plan['throughput'],
  tmp: string,
  log: (line: string) => void,
): Promise<PerSystem<ThroughputRun[]>> {
  const out: PerSystem<ThroughputRun[]> = {};
  const body = chatBody('bench-d20');
  for (let run = 0; run < plan.runs; run++) {
    for (const target of targets) {
      const script = wrkScript(tmp, `chat-${target.name}`, { method: 'POST', body, headers: target.headers });
      const cpu0 = targetCpuMs(target);
      const connections = Math.min(plan.wrkConnections, target.maxConnections ?? Number.POSITIVE_INFINITY);
      const wrk = await runWrk({
        url: target.origin + target.path,
        script,
        connections,
        durationS: plan.wrkSeconds,
      });
      const wrkCpuUs =
        target.proc === undefined ? Number.NaN : ((targetCpuMs(target) - cpu0) * 1000) / wrk.requests;
      log(
        `  throughput run ${run + 1}/${plan.runs} ${target.name}: closed-loop wrk c=${connections} ${Math.round(wrk.rps)}/s (p99 ${wrk.p99.toFixed(1)} ms, ${wrk.errors} errors, ${wrkCpuUs.toFixed(0)} µs CPU per request)`,
      );
      await new Promise((res) => setTimeout(res, 500));
      const found = await climb(target, plan, wrk.rps * plan.startFraction, body, log);
      (out[target.name] ??= []).push({
        ...found,
        wrkRps: wrk.rps,
        wrkP99: wrk.p99,
        wrkErrors: wrk.errors,
        wrkCpuUs,
      });
      log(
        `  → ${target.name}: ${found.maxRate}/s sustained${found.boundBy === undefined ? '' : ` (a lower bound: ${found.boundBy === 'generator' ? 'the generator could not offer more' : 'out of steps'})`}`,
      );
    }
  }
  return out;
}
