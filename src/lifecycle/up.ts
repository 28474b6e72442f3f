import type { RunPodApi } from '../runpod/client.js';
import { isRunPodError } from '../runpod/errors.js';
import { AppError, isAppError } from '../shared/errors.js';
import { appendAudit } from '../state/audit.js';
import { deleteRoutesForPod, upsertRoute } from '../state/routes.js';
import { listActivePods, markPodEnded, markPodReady, setPodDesired, updatePodSeen, type PodRow } from '../state/pods.js';
import { activeRun, createRun, endRun, type RunRow } from '../state/runs.js';
import { accrueTo } from './accrual.js';
import { createPodForRun } from './create-pod.js';
import { type GpuPlan, planGpus, type WorstCase, worstCaseCost } from './gpu-choice.js';
import type { ManagerDeps } from './manager-deps.js';
import { type ReadinessProgress, waitForReady } from './readiness.js';
import { podUrl, type RunSettings, settingsRecord } from './run-settings.js';
import { toGpuOffer } from './runpod-views.js';

export interface UpPlan extends GpuPlan {
  settings: RunSettings;
  /** Most the run can cost on the first choice, under the runtime limit and the run budget. */
  worstCase: WorstCase;
}

/**
 * What `up` would do, from the live catalog: the GPU types in the order they would be tried and
 * the worst-case cost. Reads only (`up --dry-run` prints this and changes nothing). Throws
 * `CONFIG_GPU_UNKNOWN` for GPU ids RunPod does not know and `RUNPOD_NO_CAPACITY` when nothing fits.
 *
 * @example
 *   const plan = await planUp(api, settings); plan.candidates[0]?.pricePerHr
 */
export async function planUp(api: Pick<RunPodApi, 'listGpuTypes'>, settings: RunSettings): Promise<UpPlan> {
  const catalog = await api.listGpuTypes({ includeAvailability: true, cloud: settings.cloud, count: settings.gpuCount });
  const plan = planGpus({
    userGpuIds: settings.gpuIds,
    catalog: catalog.map((g) => toGpuOffer(g, settings.cloud)),
    minVramGb: settings.minVramGb,
    cloud: settings.cloud,
    count: settings.gpuCount,
  });
  if (plan.unknownIds.length > 0) {
    throw new AppError('CONFIG_GPU_UNKNOWN', `RunPod does not know the GPU type(s) ${plan.unknownIds.map((id) => JSON.stringify(id)).join(', ')}`, {
      hint: 'use ids exactly as `runpod-llm catalog` lists them (e.g. "NVIDIA GeForce RTX 4090")',
    });
  }
  const first = plan.candidates[0];
  if (first === undefined) {
    const why = plan.skipped.map((s) => `${s.id}: ${s.reason}`).join('; ');
    throw new AppError('RUNPOD_NO_CAPACITY', `no GPU type fits (${settings.gpuCount}× with ≥ ${settings.minVramGb} GB VRAM in stock on ${settings.cloud})${why === '' ? '' : `: ${why}`}`, {
      hint: 'lower --min-vram, choose --gpu types yourself, or try the other --cloud; `runpod-llm catalog` shows stock',
    });
  }
  const worstCase = worstCaseCost({ pricePerHr: first.pricePerHr, runtimeMs: settings.runtimeLimitMs, budget: settings.budgetUsd });
  return { ...plan, settings, worstCase };
}

export interface UpEvents {
  /** The plan, before anything is created. */
  onPlan?: (plan: UpPlan) => void;
  onStep?: (text: string) => void;
  onProgress?: (progress: ReadinessProgress) => void;
}

export interface UpResult {
  run: RunRow;
  pod: PodRow;
  plan: UpPlan;
  /** Pod URL + `/v1`: what the route points at. */
  baseUrl: string;
  adopted: boolean;
  noCapacity: string[];
  readyAfterMs: number;
}

/**
 * Starts a run: plan, create the pod (next GPU type on no capacity; a 5xx-but-created pod is
 * adopted, never duplicated), wait for readiness, then write the route the gateway reads. On a
 * readiness timeout, a pod failure or an interrupt the pod is terminated, its cost booked, the
 * run ended and the error rethrown. The caller holds the manager lock.
 *
 * @example
 *   const result = await up(deps, settingsFromConfig(config.manager), { onProgress });
 */
export async function up(deps: ManagerDeps, settings: RunSettings, events: UpEvents = {}): Promise<UpResult> {
  const { state } = deps;
  const existing = activeRun(state);
  if (existing !== undefined) {
    const pods = listActivePods(state, existing.runId);
    if (pods.length > 0) {
      throw new AppError('STATE_RUN_ACTIVE', `a run is already active (pod ${pods.map((p) => `${p.podId} ${p.status}`).join(', ')})`, {
        hint: 'see it with `runpod-llm status`; end it with `runpod-llm down` before starting another',
      });
    }
    endRun(state, existing.runId, 'superseded');
  }

  const plan = await planUp(deps.api, settings);
  events.onPlan?.(plan);
  const run = createRun(state, {
    runtimeLimitMs: settings.runtimeLimitMs,
    budgetUsd: settings.budgetUsd,
    config: settingsRecord(settings, plan.candidates),
  });
  appendAudit(state, { action: 'run_start', reason: 'up', details: { runId: run.runId, model: settings.model, gpus: plan.candidates.map((c) => c.id) } });

  let created;
  try {
    created = await createPodForRun(deps, { run, settings, candidates: plan.candidates, runtimeLimitMs: settings.runtimeLimitMs, ...(events.onStep === undefined ? {} : { onStep: events.onStep }) });
  } catch (err) {
    endRun(state, run.runId, 'create_failed');
    throw err;
  }
  const pod = created.row;
  events.onStep?.(`pod ${pod.podId} (${pod.name}) created on ${pod.gpuCount}× ${pod.gpuTypeId}, $${pod.costPerHr.toFixed(2)}/h${created.adopted ? ' — adopted after RunPod answered 5xx but created it' : ''}`);

  const url = podUrl(settings.podUrlTemplate, pod.podId);
  try {
    const ready = await waitForReady(
      deps,
      { podId: pod.podId, podUrl: url, apiKey: pod.apiKey, model: settings.servedModelName },
      {
        timeoutMs: settings.readinessTimeoutMs,
        pollMs: settings.readinessPollMs,
        startedAt: pod.createdAt,
        onProgress: (p) => {
          updatePodSeen(state, pod.podId, { status: p.status === 'unknown' ? pod.status : p.status });
          events.onProgress?.(p);
        },
      },
    );
    const startedAt = ready.pod.startedAt === null ? null : Date.parse(ready.pod.startedAt);
    updatePodSeen(state, pod.podId, { status: ready.pod.status, costPerHr: ready.pod.cost, ...(startedAt === null || Number.isNaN(startedAt) ? {} : { startedAt }) });
    markPodReady(state, pod.podId, deps.clock.now());
    upsertRoute(state, { routeId: pod.podId, podId: pod.podId, baseUrl: `${url}/v1`, apiKey: pod.apiKey, model: settings.servedModelName, ready: true });
    appendAudit(state, { action: 'ready', reason: 'readiness', podId: pod.podId, details: { afterMs: ready.elapsedMs } });
    return { run, pod, plan, baseUrl: `${url}/v1`, adopted: created.adopted, noCapacity: created.noCapacity, readyAfterMs: ready.elapsedMs };
  } catch (err) {
    const reason = isAppError(err) && err.code === 'LIFECYCLE_READINESS_TIMEOUT' ? 'readiness_timeout' : isAppError(err) && err.code === 'LIFECYCLE_INTERRUPTED' ? 'interrupted' : 'pod_failed';
    await abandonPod(deps, pod, reason);
    endRun(state, run.runId, reason);
    throw err;
  }
}

/**
 * Terminates a pod that will not serve, books what it cost, and records why. If RunPod cannot
 * be reached the state keeps wanting it terminated, so the next `watch` (or `down`) retries.
 */
export async function abandonPod(deps: ManagerDeps, pod: PodRow, reason: string): Promise<void> {
  const { state } = deps;
  setPodDesired(state, pod.podId, 'terminated', reason);
  deleteRoutesForPod(state, pod.podId);
  try {
    await deps.api.deletePod(pod.podId);
  } catch (err) {
    if (!isRunPodError(err, 'RUNPOD_NOT_FOUND')) {
      appendAudit(state, { action: 'terminate_failed', reason, podId: pod.podId, details: { error: (err as Error).message } });
      deps.logger.error({ podId: pod.podId, err: (err as Error).message }, 'could not terminate the pod; `runpod-llm watch` or `down` will retry');
      return;
    }
  }
  accrueTo(state, pod, deps.clock.now(), pod.costPerHr);
  markPodEnded(state, pod.podId, reason, deps.clock.now());
  appendAudit(state, { action: 'terminate', reason, podId: pod.podId });
}
