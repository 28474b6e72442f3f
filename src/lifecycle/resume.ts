import { isRunPodError } from '../runpod/errors.js';
import { AppError, isAppError } from '../shared/errors.js';
import { appendAudit } from '../state/audit.js';
import { listActivePods, markPodEnded, markPodReady, type PodRow, setAccruedUntil, setPodDesired, updatePodSeen } from '../state/pods.js';
import { upsertRoute } from '../state/routes.js';
import { endRun, type RunRow } from '../state/runs.js';
import { candidatesFor, createPodForRun } from './create-pod.js';
import { remainingRuntimeMs } from './decide.js';
import type { ManagerDeps } from './manager-deps.js';
import { waitForReady } from './readiness.js';
import { podUrl, type RunSettings } from './run-settings.js';
import { abandonPod, type UpEvents } from './up.js';

export interface ResumeResult {
  run: RunRow;
  pod: PodRow;
  baseUrl: string;
  /** True when the stopped pod could not come back and a new one was created in its place. */
  replaced: boolean;
  readyAfterMs: number;
}

/**
 * `up` on a run whose pods were stopped (`down --stop`, or idleness with idle_action "stop"):
 * start the pod again (the volume and its model cache stayed), wait for readiness, route it.
 * A pod that comes back without GPUs or fails is terminated and replaced by a new one in the
 * same run, with the runtime the run has left. A run whose runtime is used up is ended instead
 * (null: the caller starts a fresh run). The caller holds the manager lock.
 */
export async function resumeRun(deps: ManagerDeps, run: RunRow, settings: RunSettings, events: UpEvents = {}): Promise<ResumeResult | null> {
  const { state, clock } = deps;
  const now = clock.now();
  const pods = listActivePods(state, run.runId);
  if (run.runtimeLimitMs !== null && now >= run.startedAt + run.runtimeLimitMs) {
    for (const pod of pods) await abandonPod(deps, pod, 'runtime_limit');
    endRun(state, run.runId, 'runtime_limit', now);
    appendAudit(state, { action: 'end_run', reason: 'runtime_limit', details: { runId: run.runId, on: 'resume' } });
    events.onStep?.('the stopped run had used up its runtime: its pod was terminated; starting a new run');
    return null;
  }
  const stopped = pods.find((p) => p.desired === 'stopped');
  if (stopped === undefined) throw new AppError('STATE_RUN_ACTIVE', 'the active run has no stopped pod to resume', { hint: 'see `runpod-llm status`' });

  events.onStep?.(`starting the stopped pod ${stopped.podId} again`);
  let gone = false;
  try {
    await deps.api.podAction(stopped.podId, 'start');
  } catch (err) {
    if (isRunPodError(err, 'RUNPOD_NOT_FOUND')) gone = true;
    else if (!isRunPodError(err, 'RUNPOD_CONFLICT')) throw err;
  }
  if (!gone) {
    setPodDesired(state, stopped.podId, 'running');
    // Nothing was billed for GPU time while it was stopped: accrue from now on.
    setAccruedUntil(state, stopped.podId, now);
    appendAudit(state, { action: 'start', reason: 'resume', podId: stopped.podId });
    try {
      return await readyAndRoute(deps, run, settings, stopped, now, events, false);
    } catch (err) {
      if (!isAppError(err) || err.code === 'LIFECYCLE_INTERRUPTED') {
        await abandonPod(deps, stopped, 'interrupted');
        throw err;
      }
      events.onStep?.(`the restarted pod did not come back (${err.message}); creating a new one`);
      await abandonPod(deps, stopped, 'resume_failed');
    }
  } else {
    markPodEnded(state, stopped.podId, 'gone', now);
  }

  const runtime = remainingRuntimeMs(run, clock.now(), settings.minRecreateRuntimeMs);
  const created = await createPodForRun(deps, { run, settings, candidates: candidatesFor(settings, stopped), runtimeLimitMs: runtime, replaces: stopped, ...(events.onStep === undefined ? {} : { onStep: events.onStep }) });
  try {
    return await readyAndRoute(deps, run, settings, created.row, created.row.createdAt, events, true);
  } catch (err) {
    await abandonPod(deps, created.row, isAppError(err) && err.code === 'LIFECYCLE_READINESS_TIMEOUT' ? 'readiness_timeout' : 'pod_failed');
    throw err;
  }
}

async function readyAndRoute(deps: ManagerDeps, run: RunRow, settings: RunSettings, pod: PodRow, since: number, events: UpEvents, replaced: boolean): Promise<ResumeResult> {
  const url = podUrl(settings.podUrlTemplate, pod.podId);
  const ready = await waitForReady(deps, { podId: pod.podId, podUrl: url, apiKey: pod.apiKey, model: settings.servedModelName }, {
    timeoutMs: settings.readinessTimeoutMs,
    pollMs: settings.readinessPollMs,
    startedAt: since,
    ...(events.onProgress === undefined ? {} : { onProgress: events.onProgress }),
  });
  updatePodSeen(deps.state, pod.podId, { status: ready.pod.status, costPerHr: ready.pod.cost });
  markPodReady(deps.state, pod.podId, deps.clock.now());
  upsertRoute(deps.state, { routeId: pod.podId, podId: pod.podId, baseUrl: `${url}/v1`, apiKey: pod.apiKey, model: settings.servedModelName, ready: true });
  appendAudit(deps.state, { action: 'ready', reason: replaced ? 'readiness' : 'resume', podId: pod.podId, details: { afterMs: ready.elapsedMs } });
  return { run, pod, baseUrl: `${url}/v1`, replaced, readyAfterMs: ready.elapsedMs };
}
