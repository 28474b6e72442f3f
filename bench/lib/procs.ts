import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/*
 * The processes a benchmark run starts (upstream, nginx, Portkey, our gateway, hello-world), and
 * the guarantee that every one of them is stopped: on success, on error and on Ctrl-C.
 *
 * Each child gets its own process group (`detached`), so a terminal Ctrl-C reaches only the
 * harness, which then stops the children in order, by their ids (nginx's workers are in its
 * group and go with it). Output goes to a log file per process in the run's temp dir.
 */

/** A process the run started, with its log file. */
export interface Managed {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** SIGTERM the group, wait up to `graceMs`, then SIGKILL it. */
  stop(graceMs?: number): Promise<void>;
}

export class ProcessSet {
  readonly #live = new Set<Managed>();

  spawn(
    name: string,
    command: string,
    args: readonly string[],
    options: { cwd?: string; env?: NodeJS.ProcessEnv; logFile: string; stdinPipe?: boolean },
  ): Managed {
    const out = openSync(options.logFile, 'a');
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: [options.stdinPipe === true ? 'pipe' : 'ignore', out, out],
    });
    if (child.pid === undefined)
      throw new Error(`could not start ${name} (${command}): see ${options.logFile}`);
    const pid = child.pid;
    const exited = new Promise<number | string>((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
    );
    const set = this.#live;
    const managed: Managed = {
      name,
      pid,
      child,
      logFile: options.logFile,
      exited,
      async stop(graceMs = 5_000) {
        if (child.exitCode === null && child.signalCode === null) {
          killGroup(pid, 'SIGTERM');
          const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        // Anything left in the group (nginx workers) goes too.
        killGroup(pid, 'SIGKILL');
        set.delete(managed);
      },
    };
    void exited.then(() => {
      if (!set.has(managed)) return;
      killGroup(pid, 'SIGKILL');
    });
    this.#live.add(managed);
    return managed;
  }

  /** Stops everything still running, newest first (clients of a process go before it). */
  async stopAll(): Promise<void> {
    for (const m of [...this.#live].reverse()) await m.stop().catch(() => undefined);
  }

  /** Last-resort synchronous kill, for `process.on('exit')` where nothing async runs. */
  killAllNow(): void {
    for (const m of this.#live) killGroup(m.pid, 'SIGKILL');
    this.#live.clear();
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Stops every child on Ctrl-C, SIGTERM or a crash of the harness; returns the uninstaller. */
export function installCleanup(procs: ProcessSet, onSignal: (signal: string) => void): () => void {
  const handler = (signal: NodeJS.Signals) => {
    onSignal(signal);
    void procs.stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  const exit = () => procs.killAllNow();
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('exit', exit);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    process.off('exit', exit);
  };
}

/** A free TCP port on loopback (closed again before use; the small race is acceptable here). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers (any HTTP status) or `timeoutMs` passes; fails early if `proc` exits. */
export async function waitForHttp(url: string, timeoutMs: number, proc?: Managed): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc?.exited.then(() => {
    exited = true;
  });
  let last = '';
  while (Date.now() < deadline) {
    if (exited)
      throw new Error(
        `${proc?.name ?? 'process'} exited before answering on ${url}; see ${proc?.logFile ?? 'its log'}`,
      );
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${url} did not answer within ${timeoutMs} ms (${last})${proc === undefined ? '' : `; see ${proc.logFile}`}`,
  );
}

/** Resident set size of one process in MB (from /proc), NaN when unknown. */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m === null ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** RSS of a process and all its descendants (nginx master + workers), in MB. */
export function treeRssMb(pid: number): number {
  let total = rssMb(pid);
  if (Number.isNaN(total)) return total;
  for (const child of childPids(pid)) {
    const r = treeRssMb(child);
    if (!Number.isNaN(r)) total += r;
  }
  return total;
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text !== '') for (const c of text.split(/\s+/)) out.push(Number(c));
    }
  } catch {
    // gone, or /proc without children files
  }
  return out;
}

/** Kernel clock ticks per second for /proc/<pid>/stat times (100 on every mainstream Linux). */
const CLK_TCK = 100;

/**
 * CPU time (user + system) a process tree has used so far, in ms. CPU per request or per event
 * is the figure a busy shared machine disturbs least: other processes stretch wall-clock
 * latency, not the cycles the proxy itself spends.
 */
export function treeCpuMs(pid: number): number {
  let total = Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
  for (const child of childPids(pid)) {
    const c = treeCpuMs(child);
    if (!Number.isNaN(c)) total += c;
  }
  return total;
}

/** Samples a process tree's RSS every `everyMs` until stopped; returns the peak and the samples. */
export function rssSampler(
  pid: number,
  everyMs = 250,
): { stop(): { peak: number; last: number; samples: number[] } } {
  const samples: number[] = [];
  const take = () => {
    const v = treeRssMb(pid);
    if (!Number.isNaN(v)) samples.push(v);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return {
        peak: samples.length === 0 ? Number.NaN : Math.max(...samples),
        last: samples.at(-1) ?? Number.NaN,
        samples,
      };
    },
  };
}

/** Path of an executable on PATH or in the sbin dirs (Debian puts nginx in /usr/sbin, off a user's PATH). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}
