import { isRunPodError } from '../runpod/errors.js';
import { appendAudit } from '../state/audit.js';
import { listActivePods, markPodEnded, type PodRow, setPodDesired } from '../state/pods.js';
import { clearRoutes, deleteRoutesForPod, setRouteReady } from '../state/routes.js';
import { activeRun, endRun } from '../state/runs.js';
import { accrueTo } from './accrual.js';
import type { ManagerDeps } from './manager-deps.js';

export interface DownPodResult {
  podId: string;
  name: string;
  outcome: 'terminated' | 'stopped' | 'already_gone' | 'already_stopped' | 'failed';
  error?: string;
}

export interface DownResult {
  pods: DownPodResult[];
  /** The run that was ended (terminate only; a stopped run stays, for `up` to resume). */
  endedRunId: string | null;
}

/**
 * `down`: terminates (or, with `stop`, stops) every pod the state knows, books their cost up to
 * now, and removes their routes. Intent is written first (`desired`), so a pod RunPod could not
 * be told about is retried by the next `down` or `watch`. The caller holds the manager lock and
 * stops the watchdog and the gateway.
 *
 * @example
 *   const result = await down(deps, { stop: false });
 */
export async function down(deps: ManagerDeps, options: { stop: boolean }): Promise<DownResult> {
  const { state } = deps;
  const run = activeRun(state);
  const results: DownPodResult[] = [];
  for (const pod of listActivePods(state)) {
    results.push(
      options.stop && pod.desired !== 'terminated' ? await stopPod(deps, pod) : await terminatePod(deps, pod),
    );
  }
  let endedRunId: string | null = null;
  if (!options.stop) {
    clearRoutes(state);
    if (run !== undefined) {
      endRun(state, run.runId, 'down', deps.clock.now());
      appendAudit(state, { action: 'end_run', reason: 'down', details: { runId: run.runId } });
      endedRunId = run.runId;
    }
  }
  return { pods: results, endedRunId };
}

async function terminatePod(deps: ManagerDeps, pod: PodRow): Promise<DownPodResult> {
  const { state } = deps;
  const base = { podId: pod.podId, name: pod.name };
  setPodDesired(state, pod.podId, 'terminated', pod.desired === 'terminated' ? undefined : 'down');
  deleteRoutesForPod(state, pod.podId);
  let gone = false;
  try {
    await deps.api.deletePod(pod.podId);
  } catch (err) {
    if (!isRunPodError(err, 'RUNPOD_NOT_FOUND')) {
      appendAudit(state, {
        action: 'terminate_failed',
        reason: 'down',
        podId: pod.podId,
        details: { error: (err as Error).message },
      });
      return { ...base, outcome: 'failed', error: (err as Error).message };
    }
    gone = true;
  }
  const now = deps.clock.now();
  // A stopped pod bills no GPU time; only a running one's last minutes are booked.
  if (pod.desired === 'running') accrueTo(state, pod, now, pod.costPerHr);
  markPodEnded(state, pod.podId, 'down', now);
  appendAudit(state, {
    action: 'terminate',
    reason: 'down',
    podId: pod.podId,
    details: { alreadyGone: gone },
  });
  return { ...base, outcome: gone ? 'already_gone' : 'terminated' };
}

async function stopPod(deps: ManagerDeps, pod: PodRow): Promise<DownPodResult> {
  const { state } = deps;
  const base = { podId: pod.podId, name: pod.name };
  if (pod.desired === 'stopped' && pod.status === 'EXITED') return { ...base, outcome: 'already_stopped' };
  const wasRunning = pod.desired === 'running';
  setPodDesired(state, pod.podId, 'stopped', 'down');
  setRouteReady(state, pod.podId, false);
  try {
    await deps.api.podAction(pod.podId, 'stop');
  } catch (err) {
    if (isRunPodError(err, 'RUNPOD_NOT_FOUND')) {
      markPodEnded(state, pod.podId, 'gone', deps.clock.now());
      deleteRoutesForPod(state, pod.podId);
      return { ...base, outcome: 'already_gone' };
    }
    // 409: RunPod says it is not stoppable in its status (already EXITED): nothing left to do.
    if (!isRunPodError(err, 'RUNPOD_CONFLICT')) {
      appendAudit(state, {
        action: 'stop_failed',
        reason: 'down',
        podId: pod.podId,
        details: { error: (err as Error).message },
      });
      return { ...base, outcome: 'failed', error: (err as Error).message };
    }
  }
  if (wasRunning) accrueTo(state, pod, deps.clock.now(), pod.costPerHr);
  appendAudit(state, { action: 'stop', reason: 'down', podId: pod.podId });
  return { ...base, outcome: 'stopped' };
}
