import { chatBody, sequentialLatency, streamBatch } from '../lib/load.js';
import { type ProcessSet, treeCpuMs } from '../lib/procs.js';
import type { Plan } from '../lib/results.js';
import { warmUp } from '../lib/sanity.js';
import { median, summarize } from '../lib/stats.js';
import {
  type GatewayBuild,
  ourTarget,
  startFloor,
  startOurGateway,
  type Target,
  UPSTREAM_KEY,
} from '../lib/systems.js';
import { runWrk, wrkScript } from '../lib/wrk.js';
import { startNginx } from '../peers/nginx.js';

/*
 * What bounds the gateway, in CPU rather than wall-clock time (which the shared machine
 * disturbs far more): CPU per request at c=1 and saturated, CPU per SSE event, for the upstream
 * alone, nginx, the Node floor (`bench/peers/node-floor.mjs`: node:http + undici and nothing
 * else) and our gateway. Run by the profile stage; the table goes into RESULTS.md with the
 * profiles.
 */

interface Row {
  label: string;
  addedP50: number;
  addedP99: number;
  cpuC1: number;
  rps: number;
  cpuSaturated: number;
  cpuPerEvent: number;
  stalled: number;
}

export async function efficiencyTable(opts: {
  procs: ProcessSet;
  tmp: string;
  plan: Plan;
  upstream: { port: number; proc: Target['proc'] };
  build: GatewayBuild;
  nginxBinary: string | undefined;
  log: (line: string) => void;
}): Promise<string> {
  const { procs, tmp, plan, log } = opts;
  const auth = { 'content-type': 'application/json', authorization: `Bearer ${UPSTREAM_KEY}` };
  const at = (port: number, proc: Target['proc']): Target => ({
    name: 'direct',
    origin: `http://127.0.0.1:${port}`,
    path: '/v1/chat/completions',
    headers: auth,
    proc,
  });
  const systems: Array<[string, Target]> = [
    ['upstream alone (direct)', at(opts.upstream.port, opts.upstream.proc)],
  ];
  if (opts.nginxBinary !== undefined) {
    const n = await startNginx(procs, { binary: opts.nginxBinary, tmp, upstreamPort: opts.upstream.port });
    systems.push(['nginx', at(n.port, n.proc)]);
  }
  const { proc: floor, port: floorPort } = await startFloor(procs, { tmp, upstreamPort: opts.upstream.port });
  systems.push(['Node floor (node:http + undici only)', at(floorPort, floor)]);
  const gw = await startOurGateway(procs, {
    tmp,
    upstreamPort: opts.upstream.port,
    build: opts.build,
    name: 'gateway-efficiency',
  });
  systems.push(['our gateway', ourTarget(gw.port, gw.proc)]);
  for (const [, t] of systems) await warmUp(t);

  const rounds = plan.quick ? 2 : 4;
  const requests = plan.quick ? 1_500 : 4_000;
  const c1 = new Map<string, Array<{ p50: number; p99: number; cpu: number }>>();
  const body = chatBody('bench-d0');
  for (let r = 0; r < rounds; r++) {
    for (const [label, t] of systems) {
      const cpu0 = treeCpuMs(t.proc?.pid ?? 0);
      const run = await sequentialLatency(t, body, requests, 100);
      const s = summarize(run.latencies);
      const list = c1.get(label) ?? [];
      list.push({
        p50: s.p50,
        p99: s.p99,
        cpu: ((treeCpuMs(t.proc?.pid ?? 0) - cpu0) * 1000) / (requests + 100),
      });
      c1.set(label, list);
    }
  }
  const direct = c1.get(systems[0]?.[0] ?? '') ?? [];
  const rows: Row[] = [];
  for (const [label, t] of systems) {
    const mine = c1.get(label) ?? [];
    const added = (k: 'p50' | 'p99') => median(mine.map((m, i) => m[k] - (direct[i]?.[k] ?? Number.NaN)));
    const cpu0 = treeCpuMs(t.proc?.pid ?? 0);
    const w = await runWrk({
      url: t.origin + t.path,
      script: wrkScript(tmp, `eff-${rows.length}`, { method: 'POST', body, headers: t.headers }),
      connections: 32,
      durationS: plan.quick ? 4 : 8,
    });
    const cpuSaturated = ((treeCpuMs(t.proc?.pid ?? 0) - cpu0) * 1000) / w.requests;
    // 128 streams: below our gateway's default upstream pool, so nothing queues.
    const cpu1 = treeCpuMs(t.proc?.pid ?? 0);
    const streams = await streamBatch(t, {
      count: 128,
      concurrency: 128,
      rampMs: 128,
      body: chatBody('bench-d0-n64-p20', { stream: true }),
      expected: 64,
    });
    const events = streams.reduce((sum, s) => sum + s.events, 0);
    const row: Row = {
      label,
      addedP50: added('p50'),
      addedP99: added('p99'),
      cpuC1: median(mine.map((m) => m.cpu)),
      rps: w.rps,
      cpuSaturated,
      cpuPerEvent: ((treeCpuMs(t.proc?.pid ?? 0) - cpu1) * 1000) / Math.max(1, events),
      stalled: streams.filter((s) => s.gaps.some((g) => g > 40)).length,
    };
    rows.push(row);
    log(
      `  efficiency ${label}: c=1 added p50 ${(row.addedP50 * 1000).toFixed(0)} µs, CPU/request ${row.cpuC1.toFixed(0)} µs (c=1), ${row.cpuSaturated.toFixed(0)} µs (saturated, ${Math.round(row.rps)}/s); ${row.cpuPerEvent.toFixed(1)} µs CPU per SSE event`,
    );
  }
  await gw.proc.stop();
  await floor.stop();

  const us = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} µs` : '—');
  const lines = [
    '#### CPU cost per request and per event (what bounds the gateway)',
    '',
    `CPU time from /proc (user + system) of the process under test only, so the shared machine disturbs it far less than latency. c=1: ${rounds} rounds × ${requests} sequential requests (added = − direct per round, median); saturated: wrk c=32, instant upstream; per event: 128 streams × 64 deltas.`,
    '',
    '| system | added p50, c=1 | added p99, c=1 | CPU/request, c=1 | CPU/request, saturated | req/s saturated (wrk c=32) | CPU per SSE event |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r, i) =>
        `| ${r.label} | ${i === 0 ? '0' : us(r.addedP50 * 1000)} | ${i === 0 ? '0' : us(r.addedP99 * 1000)} | ${us(r.cpuC1)} | ${us(r.cpuSaturated)} | ${Math.round(r.rps).toLocaleString('en-US')} | ${Number.isFinite(r.cpuPerEvent) ? `${r.cpuPerEvent.toFixed(1)} µs` : '—'} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
