import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CpuProfile, profileMarkdown, summarizeProfile } from './lib/cpuprofile.js';
import { chatBody, sequentialLatency, streamBatch } from './lib/load.js';
import type { ProcessSet } from './lib/procs.js';
import type { Plan } from './lib/results.js';
import { request } from 'undici';
import { buildGateway, ourTarget, ROOT, startOurGateway, startUpstream, type Target } from './lib/systems.js';
import { runWrk, wrkScript } from './lib/wrk.js';
import { efficiencyTable } from './workloads/efficiency.js';

/*
 * Our gateway under `node --cpu-prof`, four times: at c=1 (sequential requests on one keep-alive
 * connection, instant upstream: where the added latency of issue 14's budget is spent; a
 * saturated profile over-weights what batching hides and under-weights per-request wake-ups),
 * saturated by non-streaming requests (wrk,
 * closed loop, instant upstream), saturated by cache hits (no upstream leg: only the gateway's own
 * per-request work), then holding many streams (per-chunk cost). Each profile is written when the
 * gateway exits on SIGTERM, then summarised into bench/out/profile-*.md (self time, time per
 * package, our functions inclusive).
 */

async function answersFromCache(target: Target, body: string): Promise<boolean> {
  let seen: unknown;
  for (let i = 0; i < 2; i++) {
    const res = await request(target.origin + target.path, { method: 'POST', headers: target.headers, body });
    await res.body.dump();
    seen = res.headers['x-cache'];
  }
  return seen === 'HIT';
}

export async function profileWorkload(opts: {
  procs: ProcessSet;
  tmp: string;
  plan: Plan;
  log: (line: string) => void;
  outDir: string;
  nginxBinary: string | undefined;
}): Promise<string> {
  const { procs, tmp, plan, log, outDir } = opts;
  const build = buildGateway();
  const upstream = await startUpstream(procs, tmp);
  const sections: string[] = [
    await efficiencyTable({ procs, tmp, plan, upstream, build, nginxBinary: opts.nginxBinary, log }),
  ];
  const seconds = plan.quick ? 8 : 20;

  for (const kind of ['chat-c1', 'chat', 'cache-hit', 'stream'] as const) {
    const dir = join(outDir, `cpuprofile-${kind}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const gw = await startOurGateway(procs, {
      tmp,
      upstreamPort: upstream.port,
      build,
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
      name: `profile-${kind}`,
    });
    const target = ourTarget(gw.port, gw.proc);
    if (kind === 'chat-c1') {
      const requests = plan.quick ? 5_000 : 15_000;
      const run = await sequentialLatency(target, chatBody('bench-d0'), requests, 200);
      log(`  profile chat-c1: ${requests} sequential requests, ${run.errors} errors`);
    } else if (kind === 'chat' || kind === 'cache-hit') {
      // The cache-hit run isolates the gateway's own per-request cost: no upstream leg at all.
      const body = kind === 'chat' ? chatBody('bench-d0') : chatBody('bench-d0-cache', { temperature: 0 });
      if (kind === 'cache-hit' && !(await answersFromCache(target, body))) {
        await gw.proc.stop(20_000);
        sections.push(
          '#### Cache hits\n\nnot profiled: the gateway does not answer a repeated temperature-0 request from its cache.\n',
        );
        continue;
      }
      const script = wrkScript(tmp, `profile-${kind}`, { method: 'POST', body, headers: target.headers });
      const r = await runWrk({
        url: target.origin + target.path,
        script,
        connections: 32,
        durationS: seconds,
      });
      log(`  profile ${kind}: wrk c=32 ${seconds} s → ${Math.round(r.rps)}/s, p99 ${r.p99.toFixed(2)} ms`);
    } else {
      const body = chatBody('bench-d0-n64-p20', { stream: true });
      const rounds = Math.max(1, Math.round(seconds / 2));
      let events = 0;
      for (let i = 0; i < rounds; i++) {
        const results = await streamBatch(target, {
          count: 512,
          concurrency: 512,
          rampMs: 300,
          body,
          expected: 64,
        });
        events += results.reduce((sum, s) => sum + s.events, 0);
      }
      log(`  profile stream: ${rounds} × 512 streams of 64 deltas, ${events} events relayed`);
    }
    await gw.proc.stop(20_000);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) {
      sections.push(
        `#### ${kind}\n\nno profile was written (did the gateway exit cleanly? see ${gw.proc.logFile})\n`,
      );
      continue;
    }
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const summary = summarizeProfile(profile, ROOT);
    const titles = {
      'chat-c1': 'Non-streaming at c=1 (sequential requests, one keep-alive connection, instant upstream)',
      chat: `Non-streaming, saturated (wrk c=32, instant upstream, ${seconds} s)`,
      'cache-hit': `Cache hits, saturated (wrk c=32, ${seconds} s): the gateway's own per-request cost, no upstream leg`,
      stream: 'Streaming (512 held streams × 64 deltas at 20 ms)',
    };
    const title = titles[kind];
    const md = profileMarkdown(title, summary);
    sections.push(md);
    writeFileSync(join(outDir, `profile-${kind}.md`), md);
    log(`  profile ${kind}: ${join(dir, file)} summarised in bench/out/profile-${kind}.md`);
    for (const c of summary.categories.slice(0, 6)) log(`    ${c.category}: ${(c.share * 100).toFixed(1)} %`);
  }
  await upstream.proc.stop();
  const all = sections.join('\n');
  writeFileSync(join(outDir, 'profile.md'), all);
  return all;
}
