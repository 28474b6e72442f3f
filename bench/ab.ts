/**
 * A/B of two builds of the gateway beside the Node floor, at c=1 (issue 14's budget): the
 * upstream, the floor (bench/peers/node-floor.mjs), gateway A and gateway B all run at once;
 * each round every system takes its turn (rotating order) at sequential requests on one
 * keep-alive connection, so a noisy moment on the shared box lands on one round of every system.
 * Reported per system: added p50/p99 (system − direct within the round, median over rounds), CPU
 * per request (the process's own, from /proc), each with its ratio to the floor's; and B against A.
 *
 *   node --import tsx bench/ab.ts                        # A = HEAD, B = the working tree
 *   node --import tsx bench/ab.ts --a main~3 --rounds 12 --requests 3000
 *   node --import tsx bench/ab.ts --a /path/to/other/tree   # a directory with src/ and tsconfig*.json
 *   node --import tsx bench/ab.ts --fastify-floor          # also the floor on Fastify (bench/peers/fastify-floor.mjs)
 *
 * A git revision is exported (src/, tsconfig*.json, package.json) into bench/out/ab/ so it compiles
 * against this repository's node_modules. Each build goes to its own bench/out/ab/dist-*.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chatBody, sequentialLatency } from './lib/load.js';
import { freePort, installCleanup, ProcessSet, treeCpuMs, waitForHttp } from './lib/procs.js';
import { warmUp } from './lib/sanity.js';
import { median, summarize } from './lib/stats.js';
import {
  buildGateway,
  type GatewayBuild,
  ourTarget,
  ROOT,
  startFloor,
  startOurGateway,
  startUpstream,
  type Target,
  UPSTREAM_KEY,
} from './lib/systems.js';

interface Sample {
  p50: number;
  p99: number;
  cpuUs: number;
  errors: number;
}

/** A tree to build: a directory as it is, or a git revision exported under bench/out/ab/. */
function treeFor(spec: string, slot: string): { tree: string; label: string } {
  if (existsSync(join(spec, 'src')) && existsSync(join(spec, 'tsconfig.build.json')))
    return { tree: resolve(spec), label: resolve(spec) === resolve(ROOT) ? 'working tree' : resolve(spec) };
  const commit = execFileSync('git', ['rev-parse', '--short', spec], { cwd: ROOT, encoding: 'utf8' }).trim();
  const tree = join(ROOT, 'bench/out/ab', `src-${slot}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  const archive = execFileSync(
    'git',
    ['archive', commit, 'src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'],
    { cwd: ROOT, maxBuffer: 256 * 2 ** 20 },
  );
  execFileSync('tar', ['-x', '-C', tree], { input: archive });
  return { tree, label: `${spec} (${commit})` };
}

function build(spec: string, slot: string): { build: GatewayBuild; label: string } {
  const { tree, label } = treeFor(spec, slot);
  const outDir = join(ROOT, 'bench/out/ab', `dist-${slot}`);
  rmSync(outDir, { recursive: true, force: true });
  const b = buildGateway({ tree, outDir });
  if (b.entry[0] !== join(outDir, 'cli/main.js')) throw new Error(`${label} did not compile: ${b.note}`);
  return { build: b, label };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      a: { type: 'string', default: 'HEAD' },
      b: { type: 'string', default: ROOT },
      rounds: { type: 'string', default: '8' },
      requests: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '200' },
      'fastify-floor': { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  const requests = Number(values.requests);
  const warmup = Number(values.warmup);
  const a = build(values.a, 'a');
  const b = build(values.b, 'b');
  const tmp = mkdtempSync(join(tmpdir(), 'runpod-llm-ab-'));
  const procs = new ProcessSet();
  const uninstall = installCleanup(procs, () => undefined);
  const log = (line: string) => console.error(line);
  try {
    const upstream = await startUpstream(procs, tmp);
    const floor = await startFloor(procs, { tmp, upstreamPort: upstream.port });
    const gwA = await startOurGateway(procs, {
      tmp,
      upstreamPort: upstream.port,
      build: a.build,
      name: 'gw-a',
    });
    const gwB = await startOurGateway(procs, {
      tmp,
      upstreamPort: upstream.port,
      build: b.build,
      name: 'gw-b',
    });
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${UPSTREAM_KEY}` };
    const plain = (name: 'direct' | 'floor', port: number, proc: Target['proc']): Target => ({
      name,
      origin: `http://127.0.0.1:${port}`,
      path: '/v1/chat/completions',
      headers: auth,
      proc,
    });
    const systems: Array<[string, Target]> = [
      ['direct', plain('direct', upstream.port, upstream.proc)],
      ['floor', plain('floor', floor.port, floor.proc)],
      ['A', ourTarget(gwA.port, gwA.proc)],
      ['B', ourTarget(gwB.port, gwB.proc)],
    ];
    if (values['fastify-floor']) {
      const port = await freePort();
      const proc = procs.spawn(
        'fastify-floor',
        process.execPath,
        [
          fileURLToPath(new URL('peers/fastify-floor.mjs', import.meta.url)),
          String(port),
          `http://127.0.0.1:${upstream.port}`,
        ],
        { cwd: ROOT, logFile: join(tmp, 'fastify-floor.out') },
      );
      await waitForHttp(`http://127.0.0.1:${port}/health`, 10_000, proc);
      systems.push(['Fastify floor', plain('floor', port, proc)]);
    }
    for (const [, t] of systems) await warmUp(t);
    const body = chatBody('bench-d0');
    const samples = new Map<string, Sample[]>(systems.map(([k]) => [k, []]));
    log(
      `A = ${a.label}, B = ${b.label}; ${rounds} rounds × ${requests} requests (c=1); load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (let r = 0; r < rounds; r++) {
      const order = systems.map((_, i) => systems[(i + r) % systems.length] as [string, Target]);
      for (const [key, t] of order) {
        const cpu0 = treeCpuMs(t.proc?.pid ?? 0);
        const run = await sequentialLatency(t, body, requests, warmup);
        const cpuUs = ((treeCpuMs(t.proc?.pid ?? 0) - cpu0) * 1000) / (requests + warmup);
        const s = summarize(run.latencies);
        samples.get(key)?.push({ p50: s.p50, p99: s.p99, cpuUs, errors: run.errors });
      }
      const line = systems
        .map(([key]) => {
          const s = samples.get(key)?.[r];
          return `${key} p50 ${((s?.p50 ?? Number.NaN) * 1000).toFixed(0)} µs cpu ${(s?.cpuUs ?? Number.NaN).toFixed(0)} µs`;
        })
        .join(', ');
      log(`round ${r + 1}/${rounds}: ${line}`);
    }
    const direct = samples.get('direct') ?? [];
    const fig = (key: string) => {
      const mine = samples.get(key) ?? [];
      const added = (k: 'p50' | 'p99') =>
        median(mine.map((m, i) => (m[k] - (direct[i]?.[k] ?? Number.NaN)) * 1000));
      return {
        addedP50: added('p50'),
        addedP99: added('p99'),
        cpu: median(mine.map((m) => m.cpuUs)),
        errors: mine.reduce((sum, m) => sum + m.errors, 0),
      };
    };
    const f: Record<string, ReturnType<typeof fig>> = { floor: fig('floor'), A: fig('A'), B: fig('B') };
    if (values['fastify-floor']) f['Fastify floor'] = fig('Fastify floor');
    const floorFig = fig('floor');
    const us = (v: number) => `${Math.round(v)} µs`;
    const x = (v: number) => `${v.toFixed(2)}×`;
    const pct = (to: number, from: number) =>
      `${to >= from ? '+' : ''}${(((to - from) / from) * 100).toFixed(1)} %`;
    console.log(
      [
        `A = ${a.label}; B = ${b.label}; ${rounds} interleaved rounds × ${requests} sequential requests; load after ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
        '',
        '| system | added p50 | added p99 | CPU/request | added p50 ÷ floor | CPU ÷ floor | errors |',
        '|---|---:|---:|---:|---:|---:|---:|',
        `| direct | 0 | 0 | ${us(fig('direct').cpu)} | — | — | ${fig('direct').errors} |`,
        ...Object.entries(f).map(
          ([k, v]) =>
            `| ${k === 'floor' ? 'Node floor' : k} | ${us(v.addedP50)} | ${us(v.addedP99)} | ${us(v.cpu)} | ${x(v.addedP50 / floorFig.addedP50)} | ${x(v.cpu / floorFig.cpu)} | ${v.errors} |`,
        ),
        '',
        `B against A: added p50 ${pct(fig('B').addedP50, fig('A').addedP50)}, added p99 ${pct(fig('B').addedP99, fig('A').addedP99)}, CPU/request ${pct(fig('B').cpu, fig('A').cpu)}`,
      ].join('\n'),
    );
    if (fig('A').errors + fig('B').errors > 0) {
      console.error('ab: some requests to A or B failed or were refused (non-2xx): the figures include them');
      process.exitCode = 1;
    }
  } finally {
    await procs.stopAll();
    uninstall();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`ab: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 2;
});
