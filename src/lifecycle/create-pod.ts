import { isRunPodError, RunPodError } from '../runpod/errors.js';
import { AppError } from '../shared/errors.js';
import { appendAudit } from '../state/audit.js';
import { installId } from '../state/install.js';
import { insertPod, newPodName, type PodRow } from '../state/pods.js';
import type { RunRow } from '../state/runs.js';
import type { GpuCandidate } from './gpu-choice.js';
import type { ManagerDeps } from './manager-deps.js';
import { buildCreateRequest, newPodKey } from './create-request.js';
import type { RunSettings } from './run-settings.js';

export interface CreateForRunOptions {
  run: RunRow;
  settings: RunSettings;
  /** GPU types to try, in order. RunPod v2 never falls back by itself (docs/runpod-contract.md). */
  candidates: ReadonlyArray<Pick<GpuCandidate, 'id' | 'pricePerHr'>>;
  /** Runtime granted to this pod from its creation (null: the run's limit alone). */
  runtimeLimitMs: number | null;
  /** The dead pod this one replaces (recreate). */
  replaces?: PodRow;
  /** Why, for the audit (default: 'recreate' with `replaces`, else 'up'). */
  reason?: 'up' | 'recreate' | 'replicas' | 'wake';
  /** Human progress ("no capacity for X, trying Y"). */
  onStep?: (text: string) => void;
}

export interface CreatedPod {
  row: PodRow;
  /** RunPod answered 5xx but had created the pod: found by its unique name, not duplicated. */
  adopted: boolean;
  /** GPU types that had no capacity before this one. */
  noCapacity: string[];
}

/**
 * Creates the run's pod on the first GPU type with capacity and records it (with its fresh vLLM
 * key) before anything else can happen to it. Moves to the next type only on RunPod's
 * no-capacity answer; any other failure stops here, since trying elsewhere would not fix it.
 *
 * @example
 *   const { row } = await createPodForRun(deps, { run, settings, candidates: plan.candidates, runtimeLimitMs: settings.runtimeLimitMs });
 */
export async function createPodForRun(deps: ManagerDeps, options: CreateForRunOptions): Promise<CreatedPod> {
  const { run, settings, replaces } = options;
  const noCapacity: string[] = [];
  for (const candidate of options.candidates) {
    const name = newPodName();
    const apiKey = newPodKey();
    const { request, guard } = buildCreateRequest(settings, {
      name,
      gpuId: candidate.id,
      apiKey,
      hfToken: deps.hfToken,
      deadline: podDeadline(run, options.runtimeLimitMs, deps.clock.now()),
      install: installId(deps.state.home),
    });
    let outcome;
    try {
      outcome = await deps.api.createPodDetailed(request);
    } catch (err) {
      if (isRunPodError(err, 'RUNPOD_UNAVAILABLE')) {
        // RunPod may still create the pod after we stopped looking for it: the name is kept, so
        // the watchdog's next pass (or `runpod-llm watch`) terminates it if it ever appears.
        appendAudit(deps.state, {
          action: 'create_unconfirmed',
          reason: options.reason ?? (replaces === undefined ? 'up' : 'recreate'),
          details: { gpu: candidate.id, name },
        });
        throw new RunPodError(err.code, err.message, {
          ...(err.upstreamStatus === undefined ? {} : { upstreamStatus: err.upstreamStatus }),
          ...(err.operation === undefined ? {} : { operation: err.operation }),
          hint: `${err.hint === undefined ? '' : `${err.hint} `}RunPod may still create pod "${name}" later: \`runpod-llm watch\` (and every watchdog pass) terminates it if it appears.`,
          cause: err,
        });
      }
      if (!isRunPodError(err, 'RUNPOD_NO_CAPACITY')) throw err;
      noCapacity.push(candidate.id);
      appendAudit(deps.state, {
        action: 'no_capacity',
        reason: 'create',
        details: { gpu: candidate.id, name },
      });
      options.onStep?.(
        `no capacity for ${candidate.id}${options.candidates.length > noCapacity.length ? ', trying the next GPU type' : ''}`,
      );
      continue;
    }
    const { pod, adopted } = outcome;
    const now = deps.clock.now();
    const row = insertPod(deps.state, {
      podId: pod.id,
      name,
      runId: run.runId,
      gpuTypeId: candidate.id,
      gpuCount: settings.gpuCount,
      cloud: settings.cloud,
      costPerHr: pod.cost > 0 ? pod.cost : candidate.pricePerHr,
      model: settings.model,
      status: pod.status,
      createdAt: now,
      runtimeLimitMs: options.runtimeLimitMs,
      idleLimitMs: settings.idleLimitMs,
      idleAction: settings.idleAction,
      budgetUsd: run.budgetUsd,
      apiKey,
      guard,
      ...(replaces === undefined ? {} : { replacesPodId: replaces.podId, restarts: replaces.restarts + 1 }),
    });
    appendAudit(deps.state, {
      action: 'create',
      reason: options.reason ?? (replaces === undefined ? 'up' : 'recreate'),
      podId: pod.id,
      details: {
        name,
        gpu: candidate.id,
        costPerHr: row.costPerHr,
        adopted,
        attempts: outcome.attempts,
        runtimeLimitMs: options.runtimeLimitMs,
        guard: guard ?? 'off',
        ...(replaces === undefined ? {} : { replaces: replaces.podId }),
      },
    });
    deps.logger.info(
      { podId: pod.id, podName: name, gpu: candidate.id, adopted },
      adopted ? 'pod created (adopted after a failed create)' : 'pod created',
    );
    return { row, adopted, noCapacity };
  }
  throw new AppError(
    'RUNPOD_NO_CAPACITY',
    `RunPod has no capacity for any GPU type tried (${noCapacity.join(', ') || 'none'})`,
    {
      hint: 'try other GPU types (--gpu ID, see `runpod-llm catalog`), a lower --min-vram, the other --cloud, or again in a few minutes',
    },
  );
}

/**
 * When a pod created now must end: the run's deadline, or later when the pod was granted more
 * (a recreate gets at least the original Python tool's 5 minutes); null when neither has a limit. As `decide`
 * computes it from the stored rows.
 */
export function podDeadline(
  run: Pick<RunRow, 'startedAt' | 'runtimeLimitMs'>,
  grantedMs: number | null,
  now: number,
): number | null {
  const runDeadline = run.runtimeLimitMs === null ? null : run.startedAt + run.runtimeLimitMs;
  if (grantedMs === null) return runDeadline;
  return Math.max(runDeadline ?? -Infinity, now + grantedMs);
}

/**
 * The run's planned GPU types with the replaced pod's type first (it fitted the model, and it
 * is what the user paid for so far).
 */
export function candidatesFor(
  settings: RunSettings,
  old: Pick<PodRow, 'gpuTypeId' | 'costPerHr'> | undefined,
): Array<{ id: string; pricePerHr: number }> {
  const planned = settings.candidates.map((c) => ({ id: c.id, pricePerHr: c.pricePerHr }));
  if (old === undefined) return planned;
  const first = planned.find((c) => c.id === old.gpuTypeId) ?? {
    id: old.gpuTypeId,
    pricePerHr: old.costPerHr,
  };
  return [first, ...planned.filter((c) => c.id !== old.gpuTypeId)];
}
