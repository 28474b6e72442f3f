import { spawn } from 'node:child_process';
import { closeSync, fchmodSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir, readTextIfExists, writePrivateFile } from '../shared/secret-file.js';
import { isProcessAlive } from '../state/lock.js';

/*
 * The gateway and the watchdog loop run as detached processes of this same CLI, each with a pid
 * file and a log file (0600) under the home, so `up` can return and `down` (or cron) can stop
 * them later from another shell. This is the mechanism (start, find, stop, wait for a log line);
 * what each daemon needs is in gateway-daemon.ts and watchdog-daemon.ts.
 */

/** The two detached processes. */
export type DaemonName = 'gateway' | 'watchdog';

/** How to run this CLI again: node, its flags (tsx under development), the entry script. */
export interface SelfCommand {
  command: string;
  args: string[];
}

/** The running CLI itself: works under tsx (`--import tsx src/cli/main.ts`) and from dist. */
export function currentSelf(): SelfCommand {
  const entry = process.argv[1];
  if (entry === undefined) throw new Error('cannot tell which script is running (process.argv[1] is empty)');
  return { command: process.execPath, args: [...process.execArgv, entry] };
}

/** The word in a daemon's command line that tells it apart from a recycled pid. */
const SUBCOMMAND: Record<DaemonName, string> = { gateway: 'gateway', watchdog: 'watch' };

export function pidFile(home: string, name: DaemonName): string {
  return join(home, `${name}.pid`);
}

/** The daemon's JSON log (rotated: `<name>.log.1`, …; src/logs/log-files.ts). */
export function logFile(home: string, name: DaemonName): string {
  return join(home, 'logs', `${name}.log`);
}

/**
 * The daemon's own stdout/stderr (its start line, a crash's stack trace): replaced at each start,
 * so it holds one start's worth; the JSON log lines go to {@link logFile}.
 */
export function consoleFile(home: string, name: DaemonName): string {
  return join(home, 'logs', `${name}.out`);
}

export interface DaemonInfo {
  pid: number;
  /** Alive and (where /proc tells) still our process, not a recycled pid. */
  running: boolean;
  /**
   * Run by a service manager (`runpod-llm service install`: systemd, launchd), which restarts it
   * itself: `down` and the watchdog leave it alone.
   */
  service: boolean;
}

/** The second line of a pid file written by a daemon a service manager runs. */
const SERVICE_MARK = 'service';

/** What the pid file says, or null without one. */
export function readDaemon(home: string, name: DaemonName): DaemonInfo | null {
  const text = readTextIfExists(pidFile(home, name));
  if (text === undefined) return null;
  const [first, second] = text.split('\n');
  const pid = Number(first?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, running: isOurs(pid, name), service: second?.trim() === SERVICE_MARK };
}

/** Written by the daemon itself when it runs in the foreground (`watch --loop`, a service's gateway). */
export function writeOwnPidFile(home: string, name: DaemonName, options: { service: boolean }): void {
  writePrivateFile(pidFile(home, name), `${process.pid}\n${options.service ? `${SERVICE_MARK}\n` : ''}`);
}

function isOurs(pid: number, name: DaemonName): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\u0000');
    return argv.includes(SUBCOMMAND[name]);
  } catch {
    return true; // no /proc (macOS): trust the pid
  }
}

export interface StartDaemonOptions {
  home: string;
  name: DaemonName;
  self: SelfCommand;
  /** CLI arguments after the entry (`['gateway']`, `['watch', '--loop']`). */
  args: string[];
  /** The complete environment of the child: the caller decides what it may know. */
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface StartedDaemon {
  pid: number;
  /** Its console output (fresh at each start): where start lines and crash traces appear. */
  log: string;
  /** Resolves with the exit code if the process ends (used to catch a start-up failure). */
  exited: Promise<number | null>;
}

/**
 * Starts a detached daemon whose stdout/stderr go to its console file (0600, replaced at each
 * start) and whose JSON log goes, rotated, to its log file (LOG_FILE), writes its pid file, and
 * lets this process exit without waiting for it.
 */
export function startDaemon(options: StartDaemonOptions): StartedDaemon {
  const log = consoleFile(options.home, options.name);
  ensurePrivateDir(join(options.home, 'logs'));
  const fd = openSync(log, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    const child = spawn(options.self.command, [...options.self.args, ...options.args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...options.env, LOG_FILE: logFile(options.home, options.name) },
      cwd: options.cwd ?? process.cwd(),
    });
    if (child.pid === undefined) throw new Error(`could not start the ${options.name} process`);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    child.unref();
    writePrivateFile(pidFile(options.home, options.name), `${child.pid}\n`);
    return { pid: child.pid, log, exited };
  } finally {
    closeSync(fd);
  }
}

export type StopOutcome = 'not_running' | 'stopped' | 'killed' | 'left_to_service';

/**
 * SIGTERM, then SIGKILL after `graceMs` (default 10 s: the gateway drains in-flight streams,
 * the watchdog finishes its pass). Removes the pid file. A daemon a service manager runs is left
 * running (`left_to_service`): stopping it would only make the service manager start it again;
 * `runpod-llm service uninstall` ends it.
 */
export async function stopDaemon(
  home: string,
  name: DaemonName,
  options: { graceMs?: number; pollMs?: number } = {},
): Promise<StopOutcome> {
  const info = readDaemon(home, name);
  if (info?.running === true && info.service) return 'left_to_service';
  removePidFile(home, name);
  if (info === null || !info.running) return 'not_running';
  try {
    process.kill(info.pid, 'SIGTERM');
  } catch {
    return 'not_running';
  }
  const deadline = Date.now() + (options.graceMs ?? 10_000);
  while (Date.now() < deadline) {
    if (!isProcessAlive(info.pid)) return 'stopped';
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 100));
  }
  try {
    process.kill(info.pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  return 'killed';
}

export function removePidFile(home: string, name: DaemonName): void {
  try {
    unlinkSync(pidFile(home, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The last lines of a daemon's log (to explain a failed start). */
export function logTail(path: string, lines = 5): string {
  const text = readTextIfExists(path) ?? '';
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Waits until a just-started daemon writes a line matching `pattern` into its log (past
 * `offset`, where the log ended before the start), exits, or takes longer than `timeoutMs`.
 */
export async function waitForLogLine(
  started: StartedDaemon,
  offset: number,
  pattern: RegExp,
  timeoutMs: number,
): Promise<
  { kind: 'matched'; match: RegExpExecArray } | { kind: 'exited'; code: number | null } | { kind: 'timeout' }
> {
  let exitCode: number | null | undefined;
  void started.exited.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec((readTextIfExists(started.log) ?? '').slice(offset));
    if (match !== null) return { kind: 'matched', match };
    if (exitCode !== undefined) return { kind: 'exited', code: exitCode };
    if (Date.now() > deadline) return { kind: 'timeout' };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
