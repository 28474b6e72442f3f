import { AppError } from '../shared/errors.js';
import {
  logFile,
  logTail,
  readDaemon,
  type SelfCommand,
  startDaemon,
  waitForLogLine,
} from './detached-process.js';

/**
 * The watchdog daemon `up` leaves behind: the `watch --loop` process, which holds the RunPod
 * key (it must, to stop pods); the gateway daemon is gateway-daemon.ts.
 */

export interface WatchdogService {
  pid: number;
  reused: boolean;
  log: string;
}

/**
 * Reuses a running watchdog loop, or starts one and waits for its "watchdog started" line, so a
 * pod is never left believed-watched when the loop died at start.
 */
export async function ensureWatchdog(options: {
  home: string;
  self: SelfCommand;
  env: NodeJS.ProcessEnv;
  intervalMs: number;
  startTimeoutMs?: number;
}): Promise<WatchdogService> {
  const { home } = options;
  const running = readDaemon(home, 'watchdog');
  if (running?.running === true) return { pid: running.pid, reused: true, log: logFile(home, 'watchdog') };
  const log = logFile(home, 'watchdog');
  const started = startDaemon({
    home,
    name: 'watchdog',
    self: options.self,
    args: ['watch', '--loop', '--interval', `${options.intervalMs}ms`],
    env: { ...options.env, RUNPOD_LLM_HOME: home },
  });
  const outcome = await waitForLogLine(started, 0, /watchdog started/, options.startTimeoutMs ?? 30_000);
  if (outcome.kind === 'exited') {
    throw new AppError(
      'LIFECYCLE_WATCHDOG_FAILED',
      `the watchdog exited at start (code ${String(outcome.code)}): ${logTail(started.log, 3).replace(/\n/g, ' | ')}`,
      {
        hint: `see ${started.log} and ${log}; until a watchdog runs, only \`runpod-llm watch\` from cron enforces the limits`,
      },
    );
  }
  if (outcome.kind === 'timeout') {
    throw new AppError('LIFECYCLE_WATCHDOG_FAILED', 'the watchdog did not report its start in time', {
      hint: `see ${started.log} and ${log}`,
    });
  }
  return { pid: started.pid, reused: false, log };
}
