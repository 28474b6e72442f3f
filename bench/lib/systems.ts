import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx } from '../peers/nginx.js';
import { ensurePortkey, PORTKEY_VERSION, portkeyHeaders, startPortkey } from '../peers/portkey.js';
import { GUARD_POD_MAX_CONNECTIONS } from '../../src/guard/recipe.js';
import { freePort, type Managed, type ProcessSet, treeCpuMs, waitForHttp } from './procs.js';

/**
 * The systems every workload runs against, in table order. `guard` is the pod guard
 * (src/guard/guard.py, as the pod runs it) in front of the upstream; `floor` is the Node floor
 * (bench/peers/node-floor.mjs: node:http in, undici out, nothing else), what our gateway's own
 * budget is set against; `full` is the real request path: our gateway → the guard → the
 * upstream (RunPod's proxy is the one hop left out).
 */
export const SYSTEMS = ['direct', 'guard', 'nginx', 'floor', 'portkey', 'ours', 'full'] as const;
export type SystemName = (typeof SYSTEMS)[number];
export const LABELS: Record<SystemName, string> = {
  direct: 'direct',
  guard: 'guard',
  nginx: 'nginx',
  floor: 'Node floor',
  portkey: `Portkey ${PORTKEY_VERSION}`,
  ours: 'our gateway',
  full: 'full path',
};

/** Where a load generator sends requests for one system. */
export interface Target {
  name: SystemName;
  origin: string;
  /** Path of the chat endpoint on that origin. */
  path: string;
  headers: Record<string, string>;
  /** The proxy's process (RSS and CPU are reported); for direct, the upstream's. */
  proc: Managed | undefined;
  /** More processes on the path whose CPU counts with `proc`'s (full path: the guard). */
  alsoCpu?: Managed[];
  /** Connections the system accepts before refusing (the guard's GUARD_MAX_CONNECTIONS). */
  maxConnections?: number;
}

/** CPU used so far by a target's processes, ms (NaN without a process). */
export function targetCpuMs(target: Target): number {
  if (target.proc === undefined) return Number.NaN;
  let total = treeCpuMs(target.proc.pid);
  for (const p of target.alsoCpu ?? []) total += treeCpuMs(p.pid);
  return total;
}

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const UPSTREAM_KEY = 'bench-upstream-key-000000000000';
export const GATEWAY_KEY = 'bench-gateway-key-0123456789abcdef';

export async function startUpstream(
  procs: ProcessSet,
  tmp: string,
): Promise<{ proc: Managed; port: number }> {
  const port = await freePort();
  const proc = procs.spawn(
    'upstream',
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'bench/upstream.ts'),
      '--port',
      String(port),
      '--key',
      UPSTREAM_KEY,
      '--exit-with-stdin',
    ],
    {
      cwd: ROOT,
      logFile: join(tmp, 'upstream.out'),
      stdinPipe: true,
    },
  );
  await waitForHttp(`http://127.0.0.1:${port}/health`, 15_000, proc);
  return { proc, port };
}

export interface GatewayBuild {
  /** Arguments after `node` that run `runpod-llm`. */
  entry: string[];
  note: string;
}

/**
 * Compiles the working tree's gateway into bench/out/dist (not dist/, which others may be using)
 * so the benchmark runs plain JS as users do. A tree that does not compile (someone mid-edit)
 * falls back to tsx on the sources, and the results say so. `tree` (a directory with src/ and
 * tsconfig.build.json under this repository, so node_modules resolve) and `outDir` build another
 * tree, as bench/ab.ts does.
 */
export function buildGateway(opts: { tree?: string; outDir?: string } = {}): GatewayBuild {
  const tree = opts.tree ?? ROOT;
  const outDir = opts.outDir ?? join(ROOT, 'bench/out/dist');
  const r = spawnSync('npx', ['tsc', '-p', join(tree, 'tsconfig.build.json'), '--outDir', outDir], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });
  const main = join(outDir, 'cli/main.js');
  if (r.status === 0 && existsSync(main)) {
    copyAssets(join(tree, 'src'), outDir);
    return { entry: [main], note: 'built JS (tsc → bench/out/dist)' };
  }
  const why = (r.stdout || r.stderr || String(r.error ?? '')).trim().split('\n')[0] ?? '';
  return {
    entry: ['--import', 'tsx', join(tree, 'src/cli/main.ts')],
    note: `sources via tsx (the working tree did not compile: ${why})`,
  };
}

/** Files tsc does not emit (the dashboard's HTML/CSS/JS) go next to the compiled modules that read them. */
function copyAssets(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    if (entry.isDirectory()) copyAssets(src, join(to, entry.name));
    else if (!entry.name.endsWith('.ts')) {
      mkdirSync(to, { recursive: true });
      cpSync(src, join(to, entry.name));
    }
  }
}

export async function startOurGateway(
  procs: ProcessSet,
  opts: {
    tmp: string;
    upstreamPort: number;
    build: GatewayBuild;
    nodeArgs?: string[];
    name?: string;
    config?: object;
  },
): Promise<{ proc: Managed; port: number; logFile: string }> {
  const port = await freePort();
  const home = join(opts.tmp, `${opts.name ?? 'gateway'}-home`);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const logFile = join(opts.tmp, `${opts.name ?? 'gateway'}.log`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    RUNPOD_LLM_HOME: home,
    UPSTREAM_URL: `http://127.0.0.1:${opts.upstreamPort}/v1`,
    UPSTREAM_API_KEY: UPSTREAM_KEY,
    GATEWAY_API_KEYS: GATEWAY_KEY,
    // High enough never to trigger (100k per second per client and per key) while the limiter
    // still runs on every request. Its memory is limit × 8 bytes per key, so a per-minute limit
    // this high would cost megabytes of RSS that a real deployment would not carry. The per-key
    // window is its own setting (default 1,200 per window): without it the bench key met 429s
    // under load and capped our throughput.
    RATE_LIMIT_REQUESTS: '100000',
    KEY_RATE_LIMIT_REQUESTS: '100000',
    RATE_LIMIT_WINDOW: '1',
    LOG_FILE: logFile,
    LOG_LEVEL: 'info',
  };
  const configArgs: string[] = [];
  if (opts.config !== undefined) {
    const file = join(opts.tmp, `${opts.name ?? 'gateway'}.json`);
    writeFileSync(file, JSON.stringify(opts.config));
    configArgs.push('--config', file);
  }
  const proc = procs.spawn(
    opts.name ?? 'gateway',
    process.execPath,
    [...(opts.nodeArgs ?? []), ...opts.build.entry, 'gateway', '--port', String(port), ...configArgs],
    {
      cwd: opts.tmp,
      env,
      logFile: join(opts.tmp, `${opts.name ?? 'gateway'}.out`),
    },
  );
  await waitForHttp(`http://127.0.0.1:${port}/health`, 20_000, proc);
  return { proc, port, logFile };
}

/** Our gateway as a client would configure it, for the workloads' targets. */
export function ourTarget(port: number, proc: Managed): Target {
  return {
    name: 'ours',
    origin: `http://127.0.0.1:${port}`,
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${GATEWAY_KEY}` },
    proc,
  };
}

/** The guard as the pod starts it (guarded recipe: GUARD_MAX_CONNECTIONS 512), python3 on `script`. */
export const GUARD_SCRIPT = join(ROOT, 'src/guard/guard.py');

export async function startGuard(
  procs: ProcessSet,
  opts: { tmp: string; upstreamPort: number; script: string; name?: string },
): Promise<{ proc: Managed; port: number }> {
  const port = await freePort();
  const name = opts.name ?? 'guard';
  const proc = procs.spawn(name, 'python3', [opts.script], {
    cwd: opts.tmp,
    env: {
      PATH: process.env.PATH,
      // The upstream's key is the pod key: the guard checks it and forwards it, as on a pod.
      GUARD_API_KEY: UPSTREAM_KEY,
      GUARD_LISTEN_HOST: '127.0.0.1',
      GUARD_LISTEN_PORT: String(port),
      GUARD_UPSTREAM: `http://127.0.0.1:${opts.upstreamPort}`,
      GUARD_MAX_CONNECTIONS: String(GUARD_POD_MAX_CONNECTIONS),
    },
    logFile: join(opts.tmp, `${name}.out`),
  });
  await waitForHttp(`http://127.0.0.1:${port}/health`, 15_000, proc);
  return { proc, port };
}

/** The Node floor proxy (bench/peers/node-floor.mjs) in front of `upstreamPort`. */
export async function startFloor(
  procs: ProcessSet,
  opts: { tmp: string; upstreamPort: number; name?: string },
): Promise<{ proc: Managed; port: number }> {
  const port = await freePort();
  const name = opts.name ?? 'node-floor';
  const proc = procs.spawn(
    name,
    process.execPath,
    [
      fileURLToPath(new URL('../peers/node-floor.mjs', import.meta.url)),
      String(port),
      `http://127.0.0.1:${opts.upstreamPort}`,
    ],
    { cwd: opts.tmp, logFile: join(opts.tmp, `${name}.out`) },
  );
  await waitForHttp(`http://127.0.0.1:${port}/health`, 10_000, proc);
  return { proc, port };
}

export async function startHello(procs: ProcessSet, tmp: string): Promise<{ proc: Managed; port: number }> {
  const port = await freePort();
  const proc = procs.spawn(
    'hello',
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/hello.ts'), '--port', String(port)],
    { cwd: ROOT, logFile: join(tmp, 'hello.out') },
  );
  await waitForHttp(`http://127.0.0.1:${port}/`, 15_000, proc);
  return { proc, port };
}

export interface Started {
  targets: Partial<Record<SystemName, Target>>;
  /** Why a system is missing from the run. */
  unavailable: Partial<Record<SystemName, string>>;
  upstream: { proc: Managed; port: number };
  build: GatewayBuild;
}

/** Starts the upstream and every requested system; a peer that cannot start is reported, not fatal. */
export async function startSystems(
  procs: ProcessSet,
  opts: {
    tmp: string;
    systems: readonly SystemName[];
    nginxBinary: string | undefined;
    guardScript?: string;
    log: (line: string) => void;
  },
): Promise<Started> {
  const { tmp, log } = opts;
  const upstream = await startUpstream(procs, tmp);
  const json = { 'content-type': 'application/json' };
  const upstreamAuth = { ...json, authorization: `Bearer ${UPSTREAM_KEY}` };
  const targets: Started['targets'] = {};
  const unavailable: Started['unavailable'] = {};
  const origin = (port: number) => `http://127.0.0.1:${port}`;
  const want = new Set(opts.systems);
  let build: GatewayBuild = { entry: [], note: 'not run' };

  // direct's process is the upstream itself: its CPU per request is the reference for the others.
  if (want.has('direct'))
    targets.direct = {
      name: 'direct',
      origin: origin(upstream.port),
      path: '/v1/chat/completions',
      headers: upstreamAuth,
      proc: upstream.proc,
    };
  if (want.has('nginx')) {
    if (opts.nginxBinary === undefined) unavailable.nginx = 'nginx is not installed (apt-get install nginx)';
    else {
      try {
        const n = await startNginx(procs, { binary: opts.nginxBinary, tmp, upstreamPort: upstream.port });
        targets.nginx = {
          name: 'nginx',
          origin: origin(n.port),
          path: '/v1/chat/completions',
          headers: upstreamAuth,
          proc: n.proc,
        };
      } catch (err) {
        unavailable.nginx = (err as Error).message;
      }
    }
  }
  if (want.has('portkey')) {
    const failed = ensurePortkey(log);
    if (failed !== undefined) unavailable.portkey = failed;
    else {
      try {
        const p = await startPortkey(procs, { tmp });
        targets.portkey = {
          name: 'portkey',
          origin: origin(p.port),
          path: '/v1/chat/completions',
          headers: { ...json, ...portkeyHeaders(`${origin(upstream.port)}/v1`, UPSTREAM_KEY) },
          proc: p.proc,
        };
      } catch (err) {
        unavailable.portkey = (err as Error).message;
      }
    }
  }
  if (want.has('floor')) {
    try {
      const f = await startFloor(procs, { tmp, upstreamPort: upstream.port });
      targets.floor = {
        name: 'floor',
        origin: origin(f.port),
        path: '/v1/chat/completions',
        headers: upstreamAuth,
        proc: f.proc,
      };
    } catch (err) {
      unavailable.floor = (err as Error).message;
    }
  }
  const guardScript = opts.guardScript ?? GUARD_SCRIPT;
  if (want.has('guard')) {
    try {
      const g = await startGuard(procs, { tmp, upstreamPort: upstream.port, script: guardScript });
      targets.guard = {
        name: 'guard',
        origin: origin(g.port),
        path: '/v1/chat/completions',
        headers: upstreamAuth,
        proc: g.proc,
        maxConnections: GUARD_POD_MAX_CONNECTIONS,
      };
    } catch (err) {
      unavailable.guard = (err as Error).message;
    }
  }
  if (want.has('ours') || want.has('full')) {
    log('compiling the gateway (working tree) into bench/out/dist');
    build = buildGateway();
  }
  if (want.has('ours')) {
    try {
      const g = await startOurGateway(procs, { tmp, upstreamPort: upstream.port, build });
      targets.ours = ourTarget(g.port, g.proc);
    } catch (err) {
      unavailable.ours = (err as Error).message;
    }
  }
  if (want.has('full')) {
    try {
      // Its own guard, so the guard row's CPU and RSS stay the guard's alone.
      const g = await startGuard(procs, {
        tmp,
        upstreamPort: upstream.port,
        script: guardScript,
        name: 'guard-full',
      });
      const gw = await startOurGateway(procs, { tmp, upstreamPort: g.port, build, name: 'gateway-full' });
      targets.full = { ...ourTarget(gw.port, gw.proc), name: 'full', alsoCpu: [g.proc] };
    } catch (err) {
      unavailable.full = (err as Error).message;
    }
  }
  return { targets, unavailable, upstream, build };
}
