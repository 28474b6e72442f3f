import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/*
 * wrk (Debian) for closed-loop peaks: it is written in C and costs the shared cores far less
 * than a Node generator, so it shows how much a system serves when pushed as hard as possible.
 * A Lua script sets the POST body and headers.
 */

/** What one wrk run reports. */
export interface WrkResult {
  rps: number;
  /** Latency percentiles in ms from `--latency`. */
  p50: number;
  p99: number;
  requests: number;
  /** Non-2xx/3xx responses plus socket errors (connect, read, write, timeout). */
  errors: number;
}

function lua(str: string): string {
  return `"${str.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function wrkScript(
  dir: string,
  name: string,
  opts: { method: string; body?: string; headers: Record<string, string> },
): string {
  const lines = [`wrk.method = ${lua(opts.method)}`];
  if (opts.body !== undefined) lines.push(`wrk.body = ${lua(opts.body)}`);
  for (const [k, v] of Object.entries(opts.headers)) lines.push(`wrk.headers[${lua(k)}] = ${lua(v)}`);
  const file = join(dir, `${name}.lua`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 's') return v * 1000;
  if (unit === 'm') return v * 60_000;
  return v;
}

/** Parses wrk's text report (with --latency). Exported for the tests. */
export function parseWrk(text: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? Number.NaN);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m === null ? Number.NaN : toMs(m[1] as string, m[2] as string);
  };
  let errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (sock !== null) errors += sock.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return { rps, p50: pct('50'), p99: pct('99'), requests, errors };
}

const running = new Set<ChildProcess>();

/** Stops wrk runs in flight (the harness's Ctrl-C handler; wrk shares its process group otherwise). */
export function killRunningWrk(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export async function runWrk(opts: {
  url: string;
  script: string;
  connections: number;
  threads?: number;
  durationS: number;
  timeoutS?: number;
}): Promise<WrkResult> {
  const args = [
    '-t',
    String(opts.threads ?? 1),
    '-c',
    String(opts.connections),
    '-d',
    `${opts.durationS}s`,
    '--timeout',
    `${opts.timeoutS ?? 5}s`,
    '--latency',
    '-s',
    opts.script,
    opts.url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      running.delete(child);
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out.trim().slice(0, 300)}`));
      resolve(parseWrk(out));
    });
  });
}
