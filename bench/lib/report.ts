import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { figures, floorGoals, goals, guardGoals, keyFigures, type SystemFigures } from './figures.js';
import type { PerSystem, Results } from './results.js';
import { fmtMs, fmtNum, fmtPct, fmtRatio, fmtSpread, ratio, type Spread } from './stats.js';
import { LABELS, ROOT, SYSTEMS, type SystemName } from './systems.js';

/*
 * Writes the generated part of bench/RESULTS.md (between the markers) and keeps everything else,
 * so the hand-written analysis (profiles, what was tried) survives a re-run. The previous run's
 * key figures ride along in an HTML comment, which is how the next run says what changed.
 */

const START = '<!-- bench:generated:start -->';
const END = '<!-- bench:generated:end -->';
const DATA = /<!-- bench:data (\{.*\}) -->/;

type Row = [string, ...string[]];

function table(header: string[], rows: Row[], numeric = true): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 || !numeric ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function cell(s: Spread | undefined, fmt: (v: number) => string): string {
  return s === undefined ? '—' : fmtSpread(s, fmt);
}

function mainTable(results: Results, figs: PerSystem<SystemFigures>): string {
  const cols = SYSTEMS.filter((s) => results.available[s] === true || results.unavailable[s] !== undefined);
  const header = [
    'metric',
    ...cols.map((s) => LABELS[s]),
    'ours ÷ nginx',
    'ours ÷ Portkey',
    'ours ÷ Node floor',
  ];
  const rows: Row[] = [];
  const row = (
    metric: string,
    get: (f: SystemFigures, s: SystemName) => string,
    rat?: (f: SystemFigures) => number,
  ) => {
    const cells = cols.map((s) => {
      const f = figs[s];
      if (f === undefined) return 'n/a';
      return get(f, s);
    });
    const r = (other: SystemName) =>
      rat === undefined || figs.ours === undefined || figs[other] === undefined
        ? '—'
        : fmtRatio(ratio(rat(figs.ours), rat(figs[other])));
    rows.push([metric, ...cells, r('nginx'), r('portkey'), r('floor')]);
  };
  const ms = (v: number) => fmtMs(v);
  row('c=1 latency p50', (f) => cell(f.latP50, ms));
  row('c=1 latency p99', (f) => cell(f.latP99, ms));
  const us = (v: number) => (Number.isFinite(v) ? `${v.toFixed(0)} µs` : '—');
  row(
    "CPU per request, c=1 (direct: the upstream's own)",
    (f) => cell(f.cpuC1, us),
    (f) => f.cpuC1?.median ?? Number.NaN,
  );
  row(
    '**added p50** (proxy − direct, c=1)',
    (f, s) => (s === 'direct' ? '0' : cell(f.addedP50, ms)),
    (f) => f.addedP50?.median ?? Number.NaN,
  );
  row(
    '**added p99** (proxy − direct, c=1)',
    (f, s) => (s === 'direct' ? '0' : cell(f.addedP99, ms)),
    (f) => f.addedP99?.median ?? Number.NaN,
  );
  row(
    '**sustained rate**, 20 ms upstream (req/s, p99 < 1 s, < 0.1 % errors)',
    (f) => `${cell(f.rate, (v) => fmtNum(v))}${f.rateLowerBound === true ? ' ≥' : ''}`,
    (f) => f.rate?.median ?? Number.NaN,
  );
  row(
    `closed-loop peak (wrk c=${results.plan.throughput.wrkConnections}, req/s)`,
    (f) => cell(f.wrkRps, (v) => fmtNum(v)),
    (f) => f.wrkRps?.median ?? Number.NaN,
  );
  row(
    'CPU per request, saturated (wrk)',
    (f) => cell(f.cpuSaturated, us),
    (f) => f.cpuSaturated?.median ?? Number.NaN,
  );
  row('streamed first event at c=1, p50', (f) => cell(f.c1TtftP50, ms));
  row(
    '**added first event at c=1, p50**',
    (f, s) => (s === 'direct' ? '0' : cell(f.addedC1TtftP50, ms)),
    (f) => f.addedC1TtftP50?.median ?? Number.NaN,
  );
  row(`stream TTFT p50 (${results.plan.streaming.concurrency} at once)`, (f) => cell(f.ttftP50, ms));
  row(`stream TTFT p99 (${results.plan.streaming.concurrency} at once)`, (f) => cell(f.ttftP99, ms));
  row(
    '**added TTFT p50**',
    (f, s) => (s === 'direct' ? '0' : cell(f.addedTtftP50, ms)),
    (f) => f.addedTtftP50?.median ?? Number.NaN,
  );
  row(
    '**added TTFT p99**',
    (f, s) => (s === 'direct' ? '0' : cell(f.addedTtftP99, ms)),
    (f) => f.addedTtftP99?.median ?? Number.NaN,
  );
  row('inter-chunk gap p99 (pace 20 ms)', (f) => cell(f.gapP99, ms));
  row(
    '**added inter-chunk gap p99**',
    (f, s) => (s === 'direct' ? '0' : cell(f.addedGapP99, ms)),
    (f) => f.addedGapP99?.median ?? Number.NaN,
  );
  row('proxy RSS after warm-up', (_f, s) => {
    const v = results.rssIdle[s];
    return s === 'direct' || v === undefined ? '—' : `${v.toFixed(0)} MB`;
  });
  for (const level of results.plan.held.levels) {
    row(`${fmtNum(level)} held streams: stalled / late start / failed (worst run)`, (f) => {
      const h = f.held[level];
      return h === undefined ? '—' : `${h.stalled} / ${h.lateStart} / ${h.failed}`;
    });
    row(`${fmtNum(level)} held streams: proxy RSS peak`, (f, s) => {
      const h = f.held[level];
      return s === 'direct' || h === undefined || Number.isNaN(h.rssMb) ? '—' : `${h.rssMb.toFixed(0)} MB`;
    });
    row(
      `${fmtNum(level)} held streams: CPU per event relayed`,
      (f) => us(f.held[level]?.cpuUsPerEvent ?? Number.NaN),
      (f) => f.held[level]?.cpuUsPerEvent ?? Number.NaN,
    );
  }
  return table(header, rows);
}

function extras(results: Results): string {
  const lines: string[] = [];
  const w = results.heldWide;
  if (w !== undefined) {
    const parts = w.runs.map(
      (r) =>
        `${fmtNum(r.level)}: ${r.stalled} stalled / ${r.lateStart} late start / ${r.failed} failed, gap p99 ${fmtMs(r.gapP99)}, TTFT p99 ${fmtMs(r.ttftP99)}, RSS ${r.rssMb.toFixed(0)} MB, ${Number.isFinite(r.cpuUsPerEvent) ? r.cpuUsPerEvent.toFixed(0) : '—'} µs CPU per event`,
    );
    lines.push(
      `- **Held streams, diagnostic:** our gateway with \`upstream.connections: ${w.connections}\` instead of the default: ${parts.join('; ')}.`,
    );
  }
  const c = results.cache;
  if (c === undefined) lines.push('- **Cache hits (workload 5):** not run.');
  else if (!c.available) lines.push(`- **Cache hits (workload 5):** ${c.note}.`);
  else {
    lines.push(
      `- **Cache hits (workload 5):** ${fmtNum(c.hitRps ?? Number.NaN)} hits/s (p99 ${fmtMs(c.hitP99 ?? Number.NaN)}, ${c.hitErrors ?? 0} errors) vs a Fastify hello-world ${fmtNum(c.helloRps ?? Number.NaN)}/s (p99 ${fmtMs(c.helloP99 ?? Number.NaN)}): ${fmtRatio(ratio(c.hitRps ?? Number.NaN, c.helloRps ?? Number.NaN))} of hello-world (${c.note}).`,
    );
  }
  const s = results.soak;
  if (s === undefined) lines.push('- **Soak (workload 6):** not run.');
  else {
    lines.push(
      `- **Soak (workload 6):** ${s.seconds} s at ${s.rate} req/s (20 ms upstream) + ${s.streamsHeld} streams held throughout: ${fmtNum(s.sent)} requests, ${s.errors} errors, ${s.streamFailures} failed streams, p99 ${fmtMs(s.p99)}; RSS ${s.rssStartMb.toFixed(1)} MB after warm-up → ${s.rssEndMb.toFixed(1)} MB at the end (peak ${s.rssPeakMb.toFixed(1)} MB): growth ${fmtPct(s.growth)}.`,
    );
  }
  for (const [name, why] of Object.entries(results.unavailable))
    lines.push(`- **${LABELS[name as SystemName]} not measured:** ${why}`);
  // A refusal (429 from a limiter, 5xx) is not a proxied answer: figures with errors in them are suspect.
  const failing = SYSTEMS.flatMap((name) => {
    const lat = (results.latency[name] ?? []).reduce((sum, r) => sum + r.errors, 0);
    const wrk = (results.throughput[name] ?? []).reduce((sum, r) => sum + r.wrkErrors, 0);
    return lat + wrk > 0
      ? [`${LABELS[name]}: ${lat} in the latency workload, ${wrk} in closed-loop runs`]
      : [];
  });
  if (failing.length > 0)
    lines.push(
      `- **Warning:** non-2xx answers or failed requests (${failing.join('; ')}); those figures include refusals.`,
    );
  const hits = Object.entries(results.latency).filter(([, rounds]) => rounds.some((r) => r.cacheHits > 0));
  for (const [name] of hits)
    lines.push(
      `- **Warning:** ${name} answered X-Cache: HIT during the latency workload; its figures are not proxy figures.`,
    );
  return lines.join('\n');
}

interface Recorded {
  meta?: { commit?: string; date?: string };
  figures?: Record<string, number>;
  /** The run before, so re-rendering a run (`--report-from`) still compares with its predecessor. */
  previous?: Recorded;
}

function changes(previous: Recorded | undefined, results: Results, now: Record<string, number>): string {
  if (previous?.meta?.commit === undefined) return 'First recorded run.';
  const lines = [`Previous run: ${previous.meta.date ?? '?'} at \`${previous.meta.commit}\`.`];
  let log = '';
  try {
    log = execFileSync(
      'git',
      [
        'log',
        '--oneline',
        `${previous.meta.commit}..HEAD`,
        '--',
        'src/gateway',
        'src/config',
        'src/guard',
        'bench',
      ],
      { cwd: ROOT, encoding: 'utf8' },
    ).trim();
  } catch {
    log = '';
  }
  lines.push(
    log === ''
      ? '- No commits to src/gateway, src/config, src/guard or bench since then.'
      : `- Commits since then (src/gateway, src/config, src/guard, bench):\n${log
          .split('\n')
          .map((l) => `  - ${l}`)
          .join('\n')}`,
  );
  if (results.meta.dirty) lines.push('- This run measured uncommitted changes under src/ as well.');
  const moved = Object.keys(now).filter(
    (k) => previous.figures?.[k] !== undefined && previous.figures[k] !== now[k],
  );
  if (moved.length > 0)
    lines.push(
      `- Key figures, previous → now: ${moved.map((k) => `${k} ${previous.figures?.[k]} → ${now[k]}`).join('; ')}.`,
    );
  return lines.join('\n');
}

export function renderGenerated(results: Results, previous: Recorded | undefined): string {
  const figs = figures(results);
  const m = results.meta;
  const p = results.plan;
  const now = keyFigures(figs, results);
  const noisy = m.quick || Number(m.loadBefore.split(' ')[0]) > 0.5;
  const goalRow = (g: { goal: string; measured: string; verdict: string; note?: string }): Row => [
    g.goal,
    g.measured,
    g.verdict === 'met' ? '**met**' : g.verdict,
    g.note ?? '',
  ];
  const goalRows = goals(results, figs).map(goalRow);
  const guardRows = guardGoals(figs).map(goalRow);
  const floorRows = floorGoals(figs).map(goalRow);
  return `${START}
## Latest run

- **Command:** \`${m.command}\`
- **Date:** ${m.date} (took ${m.durationS} s)
- **Code:** commit \`${m.commit}\`${m.dirty ? ' plus uncommitted changes under src/' : ''}; our gateway ran as ${m.gatewayBuild}
- **Machine:** ${m.machine}; load average (1/5/15 min) before ${m.loadBefore}, after ${m.loadAfter}; Node ${m.node}
- **Plan:** ${p.quick ? 'quick' : 'full'}: latency ${p.latency.rounds} rounds × ${fmtNum(p.latency.requests)} requests; throughput ${p.throughput.runs} run(s), steps of ${p.throughput.stepMs / 1000} s; streaming ${p.streaming.rounds} rounds × ${p.streaming.streams} streams (c=${p.streaming.concurrency}, ${p.streaming.chunks} deltas at ${p.streaming.paceMs} ms); held streams ${p.held.runs} run(s) at ${p.held.levels.join('/')}; soak ${p.soak.seconds} s
${noisy ? `- **Noise:** ${m.quick ? 'a quick run (few samples per figure); ' : ''}${Number(m.loadBefore.split(' ')[0]) > 0.5 ? `the machine was busy before the run started (load ${m.loadBefore.split(' ')[0]} on 2 cores); ` : ''}treat the figures as indicative and compare ratios within this run only.\n` : ''}${m.notes.map((n) => `- ${n}\n`).join('')}
Medians over runs, min – max in brackets. "Added" is proxy − direct within the same round.
"guard" is the pod guard (python3 on src/guard/guard.py, GUARD_MAX_CONNECTIONS 512 as on a pod)
in front of the upstream; "full path" is our gateway → the guard → the upstream, its CPU the
gateway's and the guard's together, its RSS the gateway's. The guard is not run above its 512
connections (it answers 503 there by design).
"≥" marks a rate where the search stopped before the system failed (the load generator could not
offer more, or the step budget ran out): a lower bound.

${mainTable(results, figs)}

${extras(results)}

### Goals for the gateway, judged on this run's medians

${table(['goal', 'measured', 'verdict', 'note'], goalRows, false)}

### Goals for the gateway's own budget (issue 14), against the Node floor in this run

${results.available.floor === true && results.available.ours === true ? table(['goal', 'measured', 'verdict', 'note'], floorRows, false) : 'The Node floor and our gateway were not both measured in this run.'}

### Goals for the pod guard, judged on this run's medians

${results.available.guard === true ? table(['goal', 'measured', 'verdict', 'note'], guardRows, false) : 'The guard was not measured in this run.'}

### Changes since the last run

${changes(previous, results, now)}

<!-- bench:data ${JSON.stringify({ meta: { commit: m.commit, date: m.date, quick: m.quick }, figures: now, ...(previous === undefined ? {} : { previous: { meta: previous.meta, figures: previous.figures } }) })} -->
${END}`;
}

export function writeResults(results: Results, log: (line: string) => void): void {
  const file = join(ROOT, 'bench/RESULTS.md');
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n\n';
  const data = DATA.exec(existing)?.[1];
  let previous: Recorded | undefined;
  try {
    previous = data === undefined ? undefined : (JSON.parse(data) as Recorded);
  } catch {
    previous = undefined;
  }
  if (previous?.meta?.date === results.meta.date) previous = previous.previous;
  const generated = renderGenerated(results, previous);
  const start = existing.indexOf(START);
  const end = existing.indexOf(END);
  const next =
    start >= 0 && end > start
      ? existing.slice(0, start) + generated + existing.slice(end + END.length)
      : `${existing.trimEnd()}\n\n${generated}\n`;
  writeFileSync(file, next);
  log('bench/RESULTS.md updated (generated section)');
}

const PROFILE_START = '<!-- bench:profile:start -->';
const PROFILE_END = '<!-- bench:profile:end -->';

/** Replaces the generated profile tables (between their own markers) after a profile run. */
export function writeProfile(markdown: string, source: string, log: (line: string) => void): void {
  const file = join(ROOT, 'bench/RESULTS.md');
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n\n';
  const block = `${PROFILE_START}\n_Generated by \`${source}\`._\n\n${markdown.trim()}\n${PROFILE_END}`;
  const start = existing.indexOf(PROFILE_START);
  const end = existing.indexOf(PROFILE_END);
  const next =
    start >= 0 && end > start
      ? existing.slice(0, start) + block + existing.slice(end + PROFILE_END.length)
      : `${existing.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
  log('bench/RESULTS.md updated (profile tables)');
}
