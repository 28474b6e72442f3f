import type { RunPodApi } from '../runpod/client.js';
import { AppError } from '../shared/errors.js';
import { appendAudit } from '../state/audit.js';
import { listActivePods, type PodRow } from '../state/pods.js';
import { activeRun, createRun, endRun, type RunRow } from '../state/runs.js';
import { type CreatedPod, createPodForRun } from './create-pod.js';
import { type GpuPlan, planGpus, type WorstCase, worstCaseCost } from './gpu-choice.js';
import type { ManagerDeps } from './manager-deps.js';
import { abandonPod, failureReason, readyAndRoute, type RouteEvents } from './route-pod.js';
import { chooseStartForm } from './start-form.js';
import { getVerdict } from '../state/verdicts.js';
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
  const catalog = await api.listGpuTypes({
    includeAvailability: true,
    cloud: settings.cloud,
    count: settings.gpuCount,
  });
  const plan = planGpus({
    userGpuIds: settings.gpuIds,
    catalog: catalog.map((g) => toGpuOffer(g, settings.cloud)),
    minVramGb: settings.minVramGb,
    cloud: settings.cloud,
    count: settings.gpuCount,
  });
  if (plan.unknownIds.length > 0) {
    throw new AppError(
      'CONFIG_GPU_UNKNOWN',
      `RunPod does not know the GPU type(s) ${plan.unknownIds.map((id) => JSON.stringify(id)).join(', ')}`,
      {
        hint: 'use ids exactly as `runpod-llm catalog` lists them (e.g. "NVIDIA GeForce RTX 4090")',
      },
    );
  }
  const first = plan.candidates[0];
  if (first === undefined) {
    const why = plan.skipped.map((s) => `${s.id}: ${s.reason}`).join('; ');
    throw new AppError(
      'RUNPOD_NO_CAPACITY',
      `no GPU type fits (${settings.gpuCount}× with ≥ ${settings.minVramGb} GB VRAM in stock on ${settings.cloud})${why === '' ? '' : `: ${why}`}`,
      {
        hint: 'lower --min-vram, choose --gpu types yourself, or try the other --cloud; `runpod-llm catalog` shows stock',
      },
    );
  }
  // Every replica bills: the worst case is the group's.
  const worstCase = worstCaseCost({
    pricePerHr: first.pricePerHr * settings.replicas,
    runtimeMs: settings.runtimeLimitMs,
    budget: settings.budgetUsd,
  });
  return { ...plan, settings, worstCase };
}

export interface UpEvents extends RouteEvents {
  /** The plan, before anything is created. */
  onPlan?: (plan: UpPlan) => void;
}

export interface UpResult {
  run: RunRow;
  /** The first pod that became ready. */
  pod: PodRow;
  /** Every pod that became ready and is routed (`replicas` of them unless some failed). */
  pods: PodRow[];
  plan: UpPlan;
  /** The first pod's URL + `/v1`. */
  baseUrl: string;
  adopted: boolean;
  noCapacity: string[];
  /** Until the first pod was ready. */
  readyAfterMs: number;
  /** Replicas that could not be created or did not become ready; the watchdog creates them later. */
  missing: number;
}

/**
 * Starts a run: plan, create `settings.replicas` pods (next GPU type on no capacity; a
 * 5xx-but-created pod is adopted, never duplicated), wait for each to be ready and write its
 * route as soon as it is, so the gateway can serve from the first. A pod that fails is
 * terminated and left for the watchdog to replace; when none becomes ready — or on an interrupt —
 * every pod is terminated, its cost booked, the run ended and the error rethrown. The caller
 * holds the manager lock.
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
      throw new AppError(
        'STATE_RUN_ACTIVE',
        `a run is already active (pod ${pods.map((p) => `${p.podId} ${p.status}`).join(', ')})`,
        {
          hint: 'see it with `runpod-llm status`; end it with `runpod-llm down` before starting another',
        },
      );
    }
    endRun(state, existing.runId, 'superseded');
  }

  // The start recipe follows what `doctor --live` found out about RunPod.
  settings = chooseStartForm(settings, getVerdict(state, 'json_start_command'));
  const plan = await planUp(deps.api, settings);
  events.onPlan?.(plan);
  const run = createRun(state, {
    runtimeLimitMs: settings.runtimeLimitMs,
    budgetUsd: settings.budgetUsd,
    config: settingsRecord(settings, plan.candidates),
  });
  appendAudit(state, {
    action: 'run_start',
    reason: 'up',
    details: {
      runId: run.runId,
      model: settings.model,
      gpus: plan.candidates.map((c) => c.id),
      replicas: settings.replicas,
      guarded: settings.guarded,
    },
  });

  const created: CreatedPod[] = [];
  for (let i = 0; i < settings.replicas; i++) {
    try {
      created.push(
        await createPodForRun(deps, {
          run,
          settings,
          candidates: plan.candidates,
          runtimeLimitMs: settings.runtimeLimitMs,
          ...(events.onStep === undefined ? {} : { onStep: events.onStep }),
        }),
      );
    } catch (err) {
      if (i === 0) {
        endRun(state, run.runId, 'create_failed');
        throw err;
      }
      // The group starts smaller; the watchdog's replica rule creates the rest once it can.
      events.onStep?.(
        `replica ${i + 1} of ${settings.replicas} could not be created (${(err as Error).message}); the watchdog will retry`,
      );
      break;
    }
    const pod = created[i]?.row as PodRow;
    events.onStep?.(
      `pod ${pod.podId} (${pod.name}) created on ${pod.gpuCount}× ${pod.gpuTypeId}, $${pod.costPerHr.toFixed(2)}/h${created[i]?.adopted === true ? ' — adopted after RunPod answered 5xx but created it' : ''}`,
    );
  }

  const ready: Array<{ pod: PodRow; afterMs: number }> = [];
  let firstError: unknown;
  for (const { row: pod } of created) {
    try {
      ready.push({ pod, afterMs: await readyAndRoute(deps, settings, pod, events) });
      if (settings.replicas > 1)
        events.onStep?.(`pod ${pod.podId} ready (${ready.length} of ${settings.replicas})`);
    } catch (err) {
      const reason = failureReason(err);
      if (reason === 'interrupted') {
        for (const c of created) await abandonPod(deps, c.row, reason);
        endRun(state, run.runId, reason);
        throw err;
      }
      await abandonPod(deps, pod, reason, err);
      firstError ??= err;
      if (settings.replicas > 1)
        events.onStep?.(`pod ${pod.podId} failed (${(err as Error).message}); the watchdog will replace it`);
    }
  }
  const first = ready[0];
  if (first === undefined) {
    endRun(state, run.runId, failureReason(firstError));
    throw firstError;
  }
  const url = podUrl(settings.podUrlTemplate, first.pod.podId);
  return {
    run,
    pod: first.pod,
    pods: ready.map((r) => r.pod),
    plan,
    baseUrl: `${url}/v1`,
    adopted: created[0]?.adopted ?? false,
    noCapacity: created.flatMap((c) => c.noCapacity),
    readyAfterMs: first.afterMs,
    missing: settings.replicas - ready.length,
  };
}
