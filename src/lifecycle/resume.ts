import { isRunPodError } from '../runpod/errors.js';
import { AppError, isAppError } from '../shared/errors.js';
import { appendAudit } from '../state/audit.js';
import { listActivePods, markPodEnded, markPodStarting, type PodRow } from '../state/pods.js';
import { deleteRoutesForPod } from '../state/routes.js';
import { endRun, type RunRow } from '../state/runs.js';
import { candidatesFor, createPodForRun } from './create-pod.js';
import { remainingRuntimeMs } from './remaining-runtime.js';
import type { ManagerDeps } from './manager-deps.js';
import { podUrl, type RunSettings } from './run-settings.js';
import { abandonPod, failureReason, readyAndRoute, type RouteEvents } from './route-pod.js';

export interface ResumeResult {
  run: RunRow;
  /** The first pod ready again. */
  pod: PodRow;
  /** Every pod ready again (resumed or replaced). */
  pods: PodRow[];
  baseUrl: string;
  /** True when the first pod is a new one, created because the stopped one could not come back. */
  replaced: boolean;
  readyAfterMs: number;
}

/**
 * Asks RunPod to start a stopped pod again and records it as starting (not ready, readiness
 * timed from now, nothing booked for the stopped time). 'gone' when RunPod no longer has it
 * (its row is ended). A 409 means RunPod will not start it in its current status (already
 * starting or running): readiness tells what it really is.
 */
export async function startStoppedPod(
  deps: ManagerDeps,
  pod: PodRow,
  reason: 'resume' | 'wake',
): Promise<'started' | 'gone'> {
  const { state, clock } = deps;
  try {
    await deps.api.podAction(pod.podId, 'start');
  } catch (err) {
    if (isRunPodError(err, 'RUNPOD_NOT_FOUND')) {
      markPodEnded(state, pod.podId, 'gone', clock.now());
      deleteRoutesForPod(state, pod.podId);
      return 'gone';
    }
    if (!isRunPodError(err, 'RUNPOD_CONFLICT')) throw err;
  }
  markPodStarting(state, pod.podId, clock.now());
  appendAudit(state, { action: 'start', reason, podId: pod.podId });
  return 'started';
}

/**
 * `up` on a run whose pods were stopped (`down --stop`, or idleness with idle_action "stop"):
 * start every stopped pod again (the volume and its model cache stayed), wait for each, route
 * it. A pod that comes back without GPUs or fails is terminated and replaced by a new one in the
 * same run, with the runtime the run has left. A run whose runtime is used up is ended instead
 * (null: the caller starts a fresh run). The caller holds the manager lock.
 */
export async function resumeRun(
  deps: ManagerDeps,
  run: RunRow,
  settings: RunSettings,
  events: RouteEvents = {},
): Promise<ResumeResult | null> {
  const { state, clock } = deps;
  const now = clock.now();
  const pods = listActivePods(state, run.runId);
  if (run.runtimeLimitMs !== null && now >= run.startedAt + run.runtimeLimitMs) {
    for (const pod of pods) await abandonPod(deps, pod, 'runtime_limit');
    endRun(state, run.runId, 'runtime_limit', now);
    appendAudit(state, {
      action: 'end_run',
      reason: 'runtime_limit',
      details: { runId: run.runId, on: 'resume' },
    });
    events.onStep?.('the stopped run had used up its runtime: its pod was terminated; starting a new run');
    return null;
  }
  const stopped = pods.filter((p) => p.desired === 'stopped');
  if (stopped.length === 0)
    throw new AppError('STATE_RUN_ACTIVE', 'the active run has no stopped pod to resume', {
      hint: 'see `runpod-llm status`',
    });

  // Start them all first, so they boot side by side, then wait for each in turn.
  const started: PodRow[] = [];
  const lost: PodRow[] = [];
  for (const pod of stopped) {
    events.onStep?.(`starting the stopped pod ${pod.podId} again`);
    ((await startStoppedPod(deps, pod, 'resume')) === 'started' ? started : lost).push(pod);
  }
  const ready: Array<{ pod: PodRow; afterMs: number; replaced: boolean }> = [];
  let lastError: unknown;
  for (const pod of started) {
    try {
      ready.push({
        pod,
        afterMs: await readyAndRoute(deps, settings, pod, events, now, 'resume'),
        replaced: false,
      });
    } catch (err) {
      if (!isAppError(err) || err.code === 'LIFECYCLE_INTERRUPTED') {
        for (const p of started) await abandonPod(deps, p, 'interrupted');
        throw err;
      }
      events.onStep?.(
        `the restarted pod ${pod.podId} did not come back (${err.message}); creating a new one`,
      );
      await abandonPod(deps, pod, 'resume_failed');
      lost.push(pod);
    }
  }

  for (const old of lost) {
    const runtime = remainingRuntimeMs(run, clock.now(), settings.minRecreateRuntimeMs);
    let created;
    try {
      created = await createPodForRun(deps, {
        run,
        settings,
        candidates: candidatesFor(settings, old),
        runtimeLimitMs: runtime,
        replaces: old,
        ...(events.onStep === undefined ? {} : { onStep: events.onStep }),
      });
    } catch (err) {
      if (ready.length === 0) throw err;
      lastError = err;
      continue;
    }
    try {
      ready.push({
        pod: created.row,
        afterMs: await readyAndRoute(deps, settings, created.row, events),
        replaced: true,
      });
    } catch (err) {
      await abandonPod(deps, created.row, failureReason(err));
      if (failureReason(err) === 'interrupted') throw err;
      lastError = err;
    }
  }
  const first = ready[0];
  if (first === undefined)
    throw lastError instanceof Error
      ? lastError
      : new AppError('LIFECYCLE_POD_FAILED', 'no stopped pod came back', { hint: 'see `runpod-llm status`' });
  if (lastError !== undefined)
    events.onStep?.(
      `${stopped.length - ready.length} pod(s) could not be brought back (${(lastError as Error).message}); the watchdog will retry`,
    );
  return {
    run,
    pod: first.pod,
    pods: ready.map((r) => r.pod),
    baseUrl: `${podUrl(settings.podUrlTemplate, first.pod.podId)}/v1`,
    replaced: first.replaced,
    readyAfterMs: first.afterMs,
  };
}
