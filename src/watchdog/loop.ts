import { isAppError } from '../shared/errors.js';
import { acquireLock } from '../state/lock.js';
import { pruneIfDue } from '../state/retention.js';
import { pendingWake } from '../state/wake-requests.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import { watchOnce, type WatchOptions } from './pass.js';
import type { WatchReport } from './report.js';

export interface WatchLoopOptions extends WatchOptions {
  home: string;
  /** Faster passes while a pod is starting, so its route appears soon after it is ready. */
  pendingIntervalMs?: number;
  /**
   * Between passes, look for a gateway's wake request this often and pass at once when there is
   * one (a cheap SQLite read), so a parked run wakes within a second, not a whole interval.
   */
  wakePollMs?: number;
  onReport?: (report: WatchReport) => void;
  /** Prune history older than this once a day (manager.retention; absent: never). */
  retentionMs?: number;
  /** Under a service manager: keep passing with nothing to watch (the next `up` is watched at once). */
  stay?: boolean;
}

/**
 * `watch --loop`: a pass, then sleep, until SIGTERM or until there is nothing left to watch (no
 * active run, no pod). Each pass takes the manager lock; when another manager holds it (`up`
 * waiting for readiness, `down`) the pass is skipped, never forced.
 *
 * @example
 *   const why = await runWatchLoop(deps, { home, intervalMs: 30_000, reap: false, fallback });
 */
export async function runWatchLoop(
  deps: ManagerDeps,
  options: WatchLoopOptions,
): Promise<'nothing_to_watch' | 'stopped'> {
  const { logger } = deps;
  for (;;) {
    let report: WatchReport | undefined;
    let release: (() => void) | undefined;
    try {
      release = acquireLock(options.home, 'watch --loop', { clock: deps.clock });
    } catch (err) {
      if (!isAppError(err) || err.code !== 'STATE_LOCKED') throw err;
      logger.info({ reason: err.message }, 'another manager holds the lock: skipping this pass');
    }
    if (release !== undefined) {
      try {
        report = await watchOnce(deps, options);
        options.onReport?.(report);
        for (const r of report.actions)
          logger.info({ action: r.action, ok: r.ok, note: r.note }, 'watchdog action');
        if (options.retentionMs !== undefined) {
          const pruned = pruneIfDue(deps.state, { now: deps.clock.now(), retentionMs: options.retentionMs });
          if (pruned !== null) logger.info({ pruned }, 'state history pruned');
        }
      } catch (err) {
        logger.error(
          { err: err instanceof Error ? err.message : String(err) },
          'watchdog pass failed; retrying next pass',
        );
      } finally {
        release();
      }
    }
    if (
      report !== undefined &&
      options.stay !== true &&
      !report.runActive &&
      report.activePods === 0 &&
      !report.wakeable
    ) {
      logger.info('no active run and no pod left: the watchdog stops');
      return 'nothing_to_watch';
    }
    if (deps.signal?.aborted === true) return 'stopped';
    const wait =
      report !== undefined && report.pending > 0
        ? Math.min(options.intervalMs, options.pendingIntervalMs ?? 5_000)
        : options.intervalMs;
    try {
      await pause(deps, wait, options.wakePollMs);
    } catch {
      return 'stopped';
    }
  }
}

/**
 * Sleeps `ms`, in slices of `pollMs` when given, ending early once a new wake request is pending.
 * One the last pass left pending (RunPod unreachable) does not count: it would turn the loop
 * into a pass a second.
 */
async function pause(deps: ManagerDeps, ms: number, pollMs: number | undefined): Promise<void> {
  if (pollMs === undefined || pollMs >= ms) return deps.sleep(ms, deps.signal);
  const seen = pendingWake(deps.state)?.id;
  const end = deps.clock.now() + ms;
  for (let left = ms; left > 0; left = end - deps.clock.now()) {
    await deps.sleep(Math.min(pollMs, left), deps.signal);
    const wake = pendingWake(deps.state);
    if (wake !== null && wake.id !== seen) return;
  }
}
