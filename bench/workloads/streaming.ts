import { chatBody, type StreamResult, streamBatch } from '../lib/load.js';
import { rssSampler } from '../lib/procs.js';
import type { HeldRun, PerSystem, Plan, StreamingRound } from '../lib/results.js';
import { percentile } from '../lib/stats.js';
import { type Target, targetCpuMs } from '../lib/systems.js';

function streamModel(chunks: number, paceMs: number): string {
  return `bench-d0-n${chunks}-p${paceMs}`;
}

function allGaps(results: StreamResult[]): number[] {
  const gaps: number[] = [];
  for (const r of results) for (const g of r.gaps) gaps.push(g);
  return gaps;
}

/**
 * Workload 3: time to first token and the gaps between deltas, at a modest concurrency, so the
 * figures are the proxy's added cost per event rather than contention.
 */
export async function streamingWorkload(
  targets: Target[],
  plan: Plan['streaming'],
  log: (line: string) => void,
): Promise<PerSystem<StreamingRound[]>> {
  const out: PerSystem<StreamingRound[]> = {};
  const body = chatBody(streamModel(plan.chunks, plan.paceMs), { stream: true });
  for (let round = 0; round < plan.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length] as Target);
    for (const target of order) {
      const results = await streamBatch(target, {
        count: plan.streams,
        concurrency: plan.concurrency,
        rampMs: plan.paceMs,
        body,
        expected: plan.chunks,
      });
      const ttfts = results.map((r) => r.ttftMs).filter((v) => !Number.isNaN(v));
      const gaps = allGaps(results);
      const failed = results.filter((r) => !r.ok).length;
      const row: StreamingRound = {
        ttftP50: percentile(ttfts, 50),
        ttftP99: percentile(ttfts, 99),
        gapP50: percentile(gaps, 50),
        gapP99: percentile(gaps, 99),
        failed,
        streams: results.length,
      };
      (out[target.name] ??= []).push(row);
      const firstError = results.find((r) => !r.ok)?.error;
      log(
        `  streaming round ${round + 1}/${plan.rounds} ${target.name}: TTFT p99 ${row.ttftP99.toFixed(2)} ms, gap p50 ${row.gapP50.toFixed(2)} / p99 ${row.gapP99.toFixed(2)} ms${failed > 0 ? `, ${failed} failed (${firstError ?? ''})` : ''}`,
      );
    }
  }
  return out;
}

/**
 * Workload 4: many streams held at once (128 / 512 / 1024), opened over about a second. A stream
 * stalls when two deltas arrive more than 2 × pace apart; a stream whose first event takes more
 * than 2 × pace was queued somewhere (a connection pool limit) and is counted apart.
 */
export async function heldWorkload(
  targets: Target[],
  plan: Plan['held'],
  streaming: Plan['streaming'],
  log: (line: string) => void,
): Promise<PerSystem<HeldRun[]>> {
  const out: PerSystem<HeldRun[]> = {};
  const body = chatBody(streamModel(streaming.chunks, streaming.paceMs), { stream: true });
  const limit = 2 * streaming.paceMs;
  for (let run = 0; run < plan.runs; run++) {
    for (const level of plan.levels) {
      for (const target of targets) {
        if (target.maxConnections !== undefined && level > target.maxConnections) {
          if (run === 0)
            log(
              `  held ${level} streams ${target.name}: skipped, over its ${target.maxConnections} connections (it would answer 503 by design)`,
            );
          continue;
        }
        const sampler = target.proc === undefined ? undefined : rssSampler(target.proc.pid, 200);
        const cpu0 = targetCpuMs(target);
        const results = await streamBatch(target, {
          count: level,
          concurrency: level,
          rampMs: Math.max(250, level),
          body,
          expected: streaming.chunks,
        });
        const cpuMs = targetCpuMs(target) - cpu0;
        const rss = sampler?.stop();
        const gaps = allGaps(results);
        const ttfts = results.map((r) => r.ttftMs).filter((v) => !Number.isNaN(v));
        const row: HeldRun = {
          level,
          stalled: results.filter((r) => r.gaps.some((g) => g > limit)).length,
          lateStart: results.filter((r) => !(r.ttftMs <= limit)).length,
          failed: results.filter((r) => !r.ok).length,
          gapP99: percentile(gaps, 99),
          ttftP99: percentile(ttfts, 99),
          rssMb: rss?.peak ?? Number.NaN,
          cpuUsPerEvent:
            (cpuMs * 1000) /
            Math.max(
              1,
              results.reduce((sum, r) => sum + r.events, 0),
            ),
        };
        (out[target.name] ??= []).push(row);
        const firstError = results.find((r) => !r.ok)?.error;
        log(
          `  held ${level} streams ${target.name}: ${row.stalled} stalled, ${row.lateStart} late start, ${row.failed} failed${firstError === undefined ? '' : ` (${firstError})`}; gap p99 ${row.gapP99.toFixed(1)} ms, TTFT p99 ${row.ttftP99.toFixed(1)} ms${Number.isNaN(row.rssMb) ? '' : `, RSS ${row.rssMb.toFixed(0)} MB`}${Number.isNaN(row.cpuUsPerEvent) ? '' : `, ${row.cpuUsPerEvent.toFixed(1)} µs CPU per event`}`,
        );
        // Let closing sockets drain before the next system opens a thousand more.
        await new Promise((res) => setTimeout(res, 500));
      }
    }
  }
  return out;
}
