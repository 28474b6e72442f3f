/**
 * The pod guard's CPU per relayed SSE event (issue 14's event-rate goal), user and system time
 * apart, for one or more guard scripts measured alternately in one run (a shared box's load
 * then falls on each alike). Each round: S streams at once through the guard, each one request
 * of N events P ms apart (bench/upstream.ts, one write per event, as vLLM emits them); the
 * guard's process tree CPU over the round ÷ the events it relayed. Per-stream costs (request
 * head, upstream connect) are included, spread over the stream's N events.
 *
 *   node --import tsx bench/micro/guard-events.ts [--streams 256] [--events 250] [--pace 20]
 *     [--rounds 3] [--workers N] [guard.py ...]      (default: src/guard/guard.py)
 *
 * `events/s per core` is 1e6 ÷ (user + system µs per event): what one fully busy core sustains.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, installCleanup, type Managed, ProcessSet, waitForHttp } from '../lib/procs.js';
import { GUARD_SCRIPT, startUpstream, UPSTREAM_KEY } from '../lib/systems.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    streams: { type: 'string', default: '256' },
    events: { type: 'string', default: '250' },
    pace: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string' },
  },
});
const STREAMS = Number(values.streams);
const EVENTS = Number(values.events);
const PACE = Number(values.pace);
const ROUNDS = Number(values.rounds);
const scripts = positionals.length > 0 ? positionals.map((p) => resolve(p)) : [GUARD_SCRIPT];

/** [user, system] CPU ms of a process and its children (the workers), from /proc. */
function cpuMs(pid: number): [number, number] {
  let user = 0;
  let sys = 0;
  const visit = (p: number): void => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += (Number(f[11]) * 1000) / 100;
      sys += (Number(f[12]) * 1000) / 100;
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean))
        visit(Number(t));
    } catch {
      // gone
    }
  };
  visit(pid);
  return [user, sys];
}

/** One stream through the guard; resolves with the number of SSE events read. */
function stream(agent: Agent, port: number): Promise<number> {
  const body = JSON.stringify({
    model: `bench-d0-n${EVENTS}-p${PACE}`,
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
  });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: 'POST',
        path: '/v1/chat/completions',
        headers: {
          authorization: `Bearer ${UPSTREAM_KEY}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let events = 0;
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          const parts = (tail + text).split('\n\n');
          tail = parts.pop() ?? '';
          events += parts.length;
        });
        res.on('end', () => resolve(events));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function startGuard(
  procs: ProcessSet,
  tmp: string,
  script: string,
  upstreamPort: number,
  i: number,
): Promise<{ proc: Managed; port: number }> {
  const port = await freePort();
  const proc = procs.spawn(`guard${i}`, 'python3', [script], {
    cwd: tmp,
    env: {
      PATH: process.env.PATH,
      GUARD_API_KEY: UPSTREAM_KEY,
      GUARD_LISTEN_HOST: '127.0.0.1',
      GUARD_LISTEN_PORT: String(port),
      GUARD_UPSTREAM: `http://127.0.0.1:${upstreamPort}`,
      GUARD_MAX_CONNECTIONS: '1024',
      ...(values.workers === undefined ? {} : { GUARD_WORKERS: values.workers }),
    },
    logFile: join(tmp, `guard${i}.out`),
  });
  await waitForHttp(`http://127.0.0.1:${port}/health`, 15_000, proc);
  return { proc, port };
}

const tmp = mkdtempSync(join(tmpdir(), 'guard-events-'));
const procs = new ProcessSet();
installCleanup(procs, () => undefined);
try {
  const upstream = await startUpstream(procs, tmp);
  const guards = [];
  for (const [i, script] of scripts.entries())
    guards.push({
      script,
      ...(await startGuard(procs, tmp, script, upstream.port, i)),
      user: [] as number[],
      sys: [] as number[],
    });
  console.log(
    `${STREAMS} streams × ${EVENTS} events, ${PACE} ms apart (${Math.round((STREAMS * 1000) / PACE)} events/s offered), ${ROUNDS} rounds; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const g of guards) {
      const agent = new Agent({ keepAlive: false, maxSockets: STREAMS });
      const [u0, s0] = cpuMs(g.proc.pid);
      const counts = await Promise.all(Array.from({ length: STREAMS }, () => stream(agent, g.port)));
      const [u1, s1] = cpuMs(g.proc.pid);
      agent.destroy();
      const events = counts.reduce((a, b) => a + b, 0);
      g.user.push(((u1 - u0) * 1000) / events);
      g.sys.push(((s1 - s0) * 1000) / events);
      console.log(
        `  round ${round + 1} ${g.script}: ${events} events, user ${g.user.at(-1)!.toFixed(1)} µs + system ${g.sys.at(-1)!.toFixed(1)} µs per event`,
      );
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const g of guards) {
    const u = median(g.user);
    const s = median(g.sys);
    console.log(
      `${g.script}: median user ${u.toFixed(1)} + system ${s.toFixed(1)} = ${(u + s).toFixed(1)} µs per event → ${Math.round(1e6 / (u + s)).toLocaleString('en-US')} events/s per core`,
    );
  }
  console.log(`load after: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
} finally {
  await procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
