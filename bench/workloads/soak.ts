import { Pool } from 'undici';
import { chatBody, openLoop, runStream } from '../lib/load.js';
import { treeRssMb } from '../lib/procs.js';
import type { Plan, SoakResult } from '../lib/results.js';
import { growth, percentile } from '../lib/stats.js';
import type { Target } from '../lib/systems.js';

/**
 * Workload 6: a soak at moderate load on our gateway: constant-rate chat requests (20 ms
 * upstream) plus a few streams held continuously, for `seconds`. RSS is sampled every second;
 * growth is measured from the end of the first fifth (after warm-up: JIT, pools, caches filled)
 * to the end, so start-up allocation is not mistaken for a leak.
 */
export async function soakWorkload(
  target: Target | undefined,
  plan: Plan['soak'],
  sustainedRate: number,
  log: (line: string) => void,
): Promise<SoakResult | undefined> {
  if (target?.proc === undefined) return undefined;
  const pid = target.proc.pid;
  // Moderate: a quarter of what it sustained in workload 2, within 50..500 requests/s.
  const rate = Math.round(
    Math.min(
      500,
      Math.max(50, Number.isFinite(sustainedRate) && sustainedRate > 0 ? sustainedRate / 4 : 200),
    ),
  );
  const streamsHeld = 8;
  const samples: Array<{ t: number; rss: number }> = [];
  const t0 = performance.now();
  const sample = () => samples.push({ t: (performance.now() - t0) / 1000, rss: treeRssMb(pid) });
  sample();
  const timer = setInterval(sample, 1_000);
  const progress = setInterval(() => {
    const last = samples.at(-1);
    log(
      `  soak ${Math.round((performance.now() - t0) / 1000)}/${plan.seconds} s: RSS ${last?.rss.toFixed(1) ?? '?'} MB`,
    );
  }, 60_000);

  const stopAt = t0 + plan.seconds * 1000;
  let streamFailures = 0;
  const pool = new Pool(target.origin, { connections: streamsHeld + 2 });
  const streamBody = chatBody('bench-d0-n64-p20', { stream: true });
  const streams = Array.from({ length: streamsHeld }, async () => {
    while (performance.now() < stopAt) {
      const r = await runStream(pool, target, streamBody, 64);
      if (!r.ok) streamFailures++;
    }
  });
  const load = await openLoop(target, {
    rate,
    durationMs: plan.seconds * 1000,
    warmupMs: 0,
    timeoutMs: 3_000,
    body: chatBody('bench-d20'),
  });
  await Promise.all(streams);
  await pool.destroy().catch(() => undefined);
  clearInterval(timer);
  clearInterval(progress);
  sample();

  const warm = samples.filter((s) => s.t >= plan.seconds / 5 && !Number.isNaN(s.rss));
  const rssStart = warm[0]?.rss ?? Number.NaN;
  const rssEnd = samples.at(-1)?.rss ?? Number.NaN;
  const rssPeak = Math.max(...samples.map((s) => s.rss).filter((v) => !Number.isNaN(v)));
  const ok = load.byDue.filter((v) => !Number.isNaN(v));
  const result: SoakResult = {
    seconds: plan.seconds,
    rate,
    streamsHeld,
    sent: load.sent,
    errors: load.errors,
    streamFailures,
    p99: percentile(ok, 99),
    rssStartMb: rssStart,
    rssEndMb: rssEnd,
    rssPeakMb: rssPeak,
    growth: growth(rssStart, rssEnd),
  };
  log(
    `  soak: ${load.sent} requests at ${rate}/s + ${streamsHeld} streams, ${load.errors} errors, ${streamFailures} stream failures, p99 ${result.p99.toFixed(1)} ms; RSS ${rssStart.toFixed(1)} → ${rssEnd.toFixed(1)} MB (peak ${rssPeak.toFixed(1)})`,
  );
  return result;
}
