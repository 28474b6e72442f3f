/**
 * `npm run bench` — the benchmark harness: the same workloads against the upstream
 * directly, nginx, Portkey and our gateway, in one run, then bench/RESULTS.md.
 *
 *   npm run bench                    # full run (≈ 40 min with the 10-minute soak)
 *   npm run bench -- --quick         # ≈ 3 min, shorter steps and soak
 *   npm run bench -- --quick --only latency,streaming --systems direct,ours --no-write
 *   npm run bench -- --only profile  # CPU profile of our gateway under load
 *   npm run bench -- --quick --systems direct,guard --guard-py /tmp/old-guard.py   # another guard.py
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findExecutable, installCleanup, ProcessSet, treeRssMb } from './lib/procs.js';
import { writeProfile, writeResults } from './lib/report.js';
import { makePlan, type Results } from './lib/results.js';
import {
  ourTarget,
  ROOT,
  startOurGateway,
  startSystems,
  SYSTEMS,
  type SystemName,
  type Target,
} from './lib/systems.js';
import { checkTargets, warmUp } from './lib/sanity.js';
import { killRunningWrk } from './lib/wrk.js';
import { profileWorkload } from './profile.js';
import { cacheWorkload } from './workloads/cache.js';
import { latencyWorkload } from './workloads/latency.js';
import { soakWorkload } from './workloads/soak.js';
import { heldWorkload, streamingWorkload } from './workloads/streaming.js';
import { throughputWorkload } from './workloads/throughput.js';

const WORKLOADS = ['latency', 'throughput', 'streaming', 'held', 'cache', 'soak', 'profile'] as const;
type Workload = (typeof WORKLOADS)[number];

function usage(): string {
  return `usage: npm run bench -- [--quick] [--only ${WORKLOADS.join(',')}] [--systems ${SYSTEMS.join(',')}] [--runs N] [--soak-seconds N] [--profile] [--no-write] [--keep-tmp] [--report-from FILE] [--guard-py FILE]
  default: every workload except profile, every system, RESULTS.md rewritten (its generated part)`;
}

function list<T extends string>(value: string | undefined, all: readonly T[], what: string): T[] {
  if (value === undefined) return [...all];
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const item of items)
    if (!all.includes(item as T)) throw new Error(`unknown ${what} "${item}"; one of: ${all.join(', ')}`);
  return items as T[];
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      systems: { type: 'string' },
      runs: { type: 'string' },
      'soak-seconds': { type: 'string' },
      profile: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'keep-tmp': { type: 'boolean', default: false },
      'report-from': { type: 'string' },
      'guard-py': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage());
    return 0;
  }
  if (values['report-from'] !== undefined) {
    // Re-render RESULTS.md from a saved run (bench/out/results-*.json) without measuring again.
    writeResults(JSON.parse(readFileSync(values['report-from'], 'utf8')) as Results, (line) =>
      console.error(line),
    );
    return 0;
  }
  const workloads =
    values.only === undefined
      ? WORKLOADS.filter((w) => w !== 'profile')
      : list<Workload>(values.only, WORKLOADS, 'workload');
  if (values.profile && !workloads.includes('profile')) workloads.push('profile');
  const systems = list<SystemName>(values.systems, SYSTEMS, 'system');
  const plan = makePlan(values.quick, {
    ...(values['soak-seconds'] === undefined ? {} : { soakSeconds: Number(values['soak-seconds']) }),
    ...(values.runs === undefined ? {} : { runs: Number(values.runs) }),
  });

  // Tools first, with the fix, before anything starts.
  const missing: string[] = [];
  const nginxBinary = findExecutable('nginx');
  if (systems.includes('nginx') && nginxBinary === undefined) missing.push('nginx');
  if (
    (workloads.includes('throughput') || workloads.includes('cache') || workloads.includes('profile')) &&
    findExecutable('wrk') === undefined
  )
    missing.push('wrk');
  if (systems.includes('portkey') && findExecutable('npm') === undefined) missing.push('npm');
  if ((systems.includes('guard') || systems.includes('full')) && findExecutable('python3') === undefined)
    missing.push('python3');
  if (missing.length > 0) {
    console.error(
      `bench: missing ${missing.join(', ')}.\nfix: sudo apt-get update && sudo apt-get install -y ${missing.filter((m) => m !== 'npm').join(' ')}${missing.includes('npm') ? ' (and Node.js with npm)' : ''}\n     or leave them out:${missing.includes('nginx') || missing.includes('npm') || missing.includes('python3') ? ` --systems ${systems.filter((s) => !(s === 'nginx' && missing.includes('nginx')) && !(s === 'portkey' && missing.includes('npm')) && !((s === 'guard' || s === 'full') && missing.includes('python3'))).join(',')}` : ''}${missing.includes('wrk') ? ' --only latency,streaming,held,soak (the workloads that do not need wrk)' : ''}`,
    );
    return 3;
  }

  const started = performance.now();
  const outDir = join(ROOT, 'bench/out');
  mkdirSync(outDir, { recursive: true });
  const logFile = join(outDir, 'last-run.log');
  writeFileSync(logFile, '');
  const log = (line: string) => {
    const stamped = `[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`;
    console.error(stamped);
    appendFileSync(logFile, `${stamped}\n`);
  };
  const tmp = mkdtempSync(join(tmpdir(), 'runpod-llm-bench-'));
  const procs = new ProcessSet();
  const uninstall = installCleanup(procs, (signal) => {
    console.error(`\nbench: ${signal}: stopping everything started (logs in ${tmp})`);
    killRunningWrk();
  });

  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      command,
      commit: git(['rev-parse', '--short', 'HEAD']),
      dirty: git(['status', '--porcelain', '--', 'src']) !== '',
      node: process.version,
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, shared by generator, proxy and upstream`,
      loadBefore: loadavg()
        .map((l) => l.toFixed(2))
        .join(' '),
      loadAfter: '',
      quick: plan.quick,
      gatewayBuild: '',
      durationS: 0,
      notes:
        values['guard-py'] === undefined
          ? []
          : [`The guard ran from ${values['guard-py']}, not src/guard/guard.py.`],
    },
    available: {},
    rssIdle: {},
    unavailable: {},
    latency: {},
    throughput: {},
    streaming: {},
    held: {},
    heldWide: undefined,
    cache: undefined,
    soak: undefined,
    plan,
  };

  let failed = false;
  try {
    log(
      `bench ${plan.quick ? 'quick' : 'full'}: workloads ${workloads.join(', ')}; systems ${systems.join(', ')}; temp ${tmp}`,
    );
    const needSystems = workloads.some((w) => w !== 'profile');
    if (needSystems) {
      const s = await startSystems(procs, {
        tmp,
        systems,
        nginxBinary,
        log,
        ...(values['guard-py'] === undefined ? {} : { guardScript: values['guard-py'] }),
      });
      results.meta.gatewayBuild = s.build.note;
      results.unavailable = s.unavailable;
      for (const [name, why] of Object.entries(s.unavailable)) log(`${name} unavailable: ${why}`);
      const targets = await checkTargets(
        SYSTEMS.map((n) => s.targets[n]).filter((t): t is Target => t !== undefined),
        results.unavailable,
        log,
      );
      for (const t of targets) {
        results.available[t.name] = true;
        if (t.proc !== undefined) results.rssIdle[t.name] = treeRssMb(t.proc.pid);
      }
      const ours = targets.find((t) => t.name === 'ours');
      if (workloads.includes('latency')) {
        log('workload 1: added latency at concurrency 1');
        results.latency = await latencyWorkload(targets, plan.latency, log);
      }
      if (workloads.includes('streaming')) {
        log('workload 3: streaming TTFT and inter-chunk gaps');
        results.streaming = await streamingWorkload(targets, plan.streaming, log);
      }
      // Held streams before the throughput climb: the proxies' RSS then reflects holding streams,
      // not heap grown under thousands of requests per second that V8 has not handed back yet.
      if (workloads.includes('held')) {
        log('workload 4: concurrent streams held');
        results.held = await heldWorkload(targets, plan.held, plan.streaming, log);
        if (ours !== undefined && (results.held.ours ?? []).some((r) => r.lateStart > 0)) {
          const connections = Math.max(...plan.held.levels) * 2;
          log(
            `  our gateway made streams wait: again with upstream.connections = ${connections} (diagnostic)`,
          );
          const wide = await startOurGateway(procs, {
            tmp,
            upstreamPort: s.upstream.port,
            build: s.build,
            name: 'gateway-wide',
            config: { upstream: { connections } },
          });
          const wideTarget = ourTarget(wide.port, wide.proc);
          await warmUp(wideTarget);
          const wideHeld = await heldWorkload([wideTarget], { ...plan.held, runs: 1 }, plan.streaming, log);
          results.heldWide = { connections, runs: wideHeld.ours ?? [] };
          await wide.proc.stop();
        }
      }
      if (workloads.includes('throughput')) {
        log('workload 2: sustained throughput, 20 ms upstream');
        results.throughput = await throughputWorkload(targets, plan.throughput, tmp, log);
      }
      if (workloads.includes('cache')) {
        log('workload 5: cache hits');
        results.cache = await cacheWorkload(ours, plan.cache, procs, tmp, log);
        log(`  cache: ${results.cache.note}`);
      }
      if (workloads.includes('soak')) {
        log(`workload 6: soak, ${plan.soak.seconds} s`);
        const sustained = results.throughput.ours?.map((r) => r.maxRate) ?? [];
        results.soak = await soakWorkload(
          ours,
          plan.soak,
          sustained.length === 0 ? Number.NaN : Math.min(...sustained),
          log,
        );
      }
      await procs.stopAll();
    }
    if (workloads.includes('profile')) {
      log('profile: our gateway under load with --cpu-prof');
      const profile = await profileWorkload({ procs, tmp, plan, log, outDir, nginxBinary });
      if (!values['no-write'])
        writeProfile(
          profile,
          `${command} (${new Date().toISOString()}, commit ${results.meta.commit}${results.meta.dirty ? ' + uncommitted changes' : ''})`,
          log,
        );
    }
  } catch (err) {
    failed = true;
    log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await procs.stopAll();
    uninstall();
  }
  results.meta.loadAfter = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  results.meta.durationS = Math.round((performance.now() - started) / 1000);

  const stamp = results.meta.date.replace(/[:.]/g, '-');
  writeFileSync(join(outDir, `results-${stamp}.json`), `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(results, null, 1)}\n`);
  if (!failed && workloads.some((w) => w !== 'profile') && !values['no-write']) {
    writeResults(results, log);
  }
  if (values['keep-tmp'] || failed || Object.keys(results.unavailable).length > 0)
    log(`process logs kept in ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
  log(`done in ${results.meta.durationS} s; raw results in bench/out/latest.json`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench: ${(err as Error).message}\n${usage()}`);
    process.exit(2);
  },
);
