import { isRunPodError } from '../runpod/errors.js';
import { appendAudit } from '../state/audit.js';
import { markPodEnded, type PodRow, setAccruedUntil, setPodDesired } from '../state/pods.js';
import { deleteRoutesForPod, ROUTE_POLL_MS, setRouteReady } from '../state/routes.js';
import { endRun, type RunRow } from '../state/runs.js';
import { addSpend } from '../state/spend.js';
import { candidatesFor, createPodForRun } from '../lifecycle/create-pod.js';
import type { Action, LivePod } from './decision.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import type { RunSettings } from '../lifecycle/run-settings.js';
import type { ActionResult } from './report.js';

/**
 * The thin half of the watchdog: performs one of `decide`'s actions and writes its audit row.
 * Intent is recorded before the RunPod call (`desired`), so a crash in between is retried by the
 * next pass instead of forgotten; a failed call is audited and left for the next pass.
 */
/**
 * How long a pod stays up after its route is withdrawn and before RunPod is asked to stop or
 * terminate it: two of the gateway's route polls (`ROUTE_POLL_MS`), so a request that arrives
 * meanwhile is refused or wakes a pod (503 `model_waking`) instead of being sent to a pod that is
 * going away (502). Costs at most two seconds of GPU time per stop.
 */
export const ROUTE_DRAIN_MS = 2 * ROUTE_POLL_MS;

export interface ActionContext {
  deps: ManagerDeps;
  run: RunRow | null;
  settings: RunSettings;
  /** Our active pods by id, as read at the start of the pass. */
  pods: Map<string, PodRow>;
  live: Map<string, LivePod | 'not_found'> | 'unreachable';
  now: number;
  unreachableError: string | null;
}

export async function executeAction(ctx: ActionContext, action: Action): Promise<ActionResult> {
  const { deps, now } = ctx;
  const { state } = deps;
  const audit = (
    name: string,
    reason: string | null,
    podId: string | null,
    details?: Record<string, unknown>,
  ): void => {
    appendAudit(state, {
      action: name,
      reason,
      podId,
      at: now,
      ...(details === undefined ? {} : { details }),
    });
  };
  const failed = (name: string, reason: string, podId: string | null, err: unknown): ActionResult => {
    const message = err instanceof Error ? err.message : String(err);
    audit(`${name}_failed`, reason, podId, { error: message });
    deps.logger.error(
      { action: name, reason, podId, err: message },
      'watchdog action failed; the next pass retries',
    );
    return { action, ok: false, note: message };
  };

  switch (action.type) {
    case 'keep':
      return { action, ok: true };
    case 'accrue':
      addSpend(state, { podId: action.podId, at: now, usd: action.usd });
      setAccruedUntil(state, action.podId, action.until);
      return { action, ok: true };
    case 'terminate': {
      const ours = ctx.pods.get(action.podId);
      if (ours !== undefined) {
        // A retry keeps the first reason (why the pod had to go), not "retry".
        setPodDesired(
          state,
          action.podId,
          'terminated',
          action.reason === 'retry' ? undefined : action.reason,
        );
        deleteRoutesForPod(state, action.podId);
        if (action.reason !== 'retry') await deps.sleep(ROUTE_DRAIN_MS);
      }
      try {
        await deps.api.deletePod(action.podId);
      } catch (err) {
        if (!isRunPodError(err, 'RUNPOD_NOT_FOUND'))
          return failed('terminate', action.reason, action.podId, err);
      }
      if (ours !== undefined) markPodEnded(state, action.podId, action.reason, now);
      audit(
        'terminate',
        action.reason,
        action.podId,
        ours === undefined ? { orphan: true } : { costPerHr: ours.costPerHr },
      );
      if (action.reason === 'recreate_limit') {
        // Say so: the bound, not RunPod, ended it (a model that cannot load must not loop).
        const note = `terminated ${action.podId}: it needed replacing again, but this run already recreated ${ctx.settings.maxRecreations} pod(s) (manager.max_recreations); see the pod's log lines in the audit and fix the model or GPU before \`runpod-llm up\``;
        deps.logger.warn(
          { podId: action.podId, maxRecreations: ctx.settings.maxRecreations },
          'recreation bound reached: pod terminated, not replaced',
        );
        return { action, ok: true, note };
      }
      deps.logger.info({ podId: action.podId, reason: action.reason }, 'pod terminated');
      return { action, ok: true, note: `terminated ${action.podId} (${action.reason})` };
    }
    case 'stop': {
      setPodDesired(state, action.podId, 'stopped', action.reason);
      setRouteReady(state, action.podId, false);
      await deps.sleep(ROUTE_DRAIN_MS);
      try {
        await deps.api.podAction(action.podId, 'stop');
      } catch (err) {
        // 409: already stopped (or not stoppable now); the next pass sees the real status.
        if (!isRunPodError(err, 'RUNPOD_CONFLICT')) return failed('stop', action.reason, action.podId, err);
      }
      audit('stop', action.reason, action.podId);
      return { action, ok: true, note: `stopped ${action.podId} (${action.reason})` };
    }
    case 'mark_stopped':
      setPodDesired(state, action.podId, 'stopped', action.reason);
      setRouteReady(state, action.podId, false);
      audit('mark_stopped', action.reason, action.podId);
      return { action, ok: true };
    case 'mark_ended':
      markPodEnded(state, action.podId, action.reason, now);
      deleteRoutesForPod(state, action.podId);
      audit('mark_ended', action.reason, action.podId);
      return { action, ok: true, note: `${action.podId} is gone on RunPod` };
    case 'recreate':
      return recreate(ctx, action, failed, audit);
    case 'create': {
      if (ctx.run === null || ctx.run.runId !== action.runId)
        return { action, ok: false, note: 'run no longer active' };
      try {
        const created = await createPodForRun(deps, {
          run: ctx.run,
          settings: ctx.settings,
          candidates: candidatesFor(ctx.settings, undefined),
          runtimeLimitMs: action.remainingRuntimeMs,
          reason: 'replicas',
        });
        audit('create_replica', action.reason, created.row.podId, {
          runtimeLimitMs: action.remainingRuntimeMs,
        });
        return { action, ok: true, note: `created ${created.row.podId}` };
      } catch (err) {
        return failed('create_replica', action.reason, null, err);
      }
    }
    case 'end_run':
      endRun(state, action.runId, action.reason, now);
      for (const pod of ctx.pods.values())
        if (pod.runId === action.runId) deleteRoutesForPod(state, pod.podId);
      audit('end_run', action.reason, null, { runId: action.runId });
      deps.logger.info({ runId: action.runId, reason: action.reason }, 'run ended');
      return { action, ok: true, note: `run ended (${action.reason})` };
    case 'report_orphan':
      if (action.otherInstall === true) {
        audit('orphan', 'other_install', action.podId, { name: action.name });
        deps.logger.warn(
          { podId: action.podId, name: action.name },
          'a runpod-llm pod of another install (another machine or state directory on this RunPod account) is running; never reaped from here',
        );
        return { action, ok: true, note: `${action.podId} (${action.name}) belongs to another install` };
      }
      audit('orphan', 'unknown_to_state', action.podId, { name: action.name });
      deps.logger.warn(
        { podId: action.podId, name: action.name },
        'a runpod-llm pod the state does not know is running (orphan); `runpod-llm watch --reap` terminates it',
      );
      return { action, ok: true, note: `orphan ${action.podId} (${action.name})` };
    case 'noop_unreachable':
      audit('noop_unreachable', 'runpod_unreachable', null, { error: ctx.unreachableError ?? 'unknown' });
      return { action, ok: false, note: ctx.unreachableError ?? 'RunPod unreachable' };
  }
}

type Failed = (name: string, reason: string, podId: string | null, err: unknown) => ActionResult;
type Audit = (
  name: string,
  reason: string | null,
  podId: string | null,
  details?: Record<string, unknown>,
) => void;

/**
 * Replacement first, then the end of the old pod: if no GPU can be had now, the dead pod's row
 * stays, so the next pass tries again (an EXITED pod bills nothing but its volume).
 * Terminate + create rather than start: a restarted pod can come back without GPUs (docs/runpod-contract.md).
 */
async function recreate(
  ctx: ActionContext,
  action: Extract<Action, { type: 'recreate' }>,
  failed: Failed,
  audit: Audit,
): Promise<ActionResult> {
  const { deps, now } = ctx;
  const old = ctx.pods.get(action.podId);
  if (old === undefined || ctx.run === null)
    return { action, ok: false, note: 'pod or run no longer active' };
  let created;
  try {
    created = await createPodForRun(deps, {
      run: ctx.run,
      settings: ctx.settings,
      candidates: candidatesFor(ctx.settings, old),
      runtimeLimitMs: action.remainingRuntimeMs,
      replaces: old,
    });
  } catch (err) {
    return failed('recreate', action.reason, action.podId, err);
  }
  setPodDesired(deps.state, old.podId, 'terminated', action.reason);
  deleteRoutesForPod(deps.state, old.podId);
  const l = ctx.live === 'unreachable' ? undefined : ctx.live.get(old.podId);
  if (l !== undefined && l !== 'not_found' && l.status !== 'TERMINATED') {
    try {
      await deps.api.deletePod(old.podId);
    } catch (err) {
      // The old row stays wanted-terminated: the next pass retries the delete.
      if (!isRunPodError(err, 'RUNPOD_NOT_FOUND')) {
        audit('recreate', action.reason, old.podId, {
          newPodId: created.row.podId,
          remainingRuntimeMs: action.remainingRuntimeMs,
          oldPodDeleteFailed: (err as Error).message,
        });
        return {
          action,
          ok: true,
          note: `recreated as ${created.row.podId}; deleting ${old.podId} failed, will retry`,
        };
      }
    }
  }
  markPodEnded(deps.state, old.podId, action.reason, now);
  audit('recreate', action.reason, old.podId, {
    newPodId: created.row.podId,
    gpu: created.row.gpuTypeId,
    remainingRuntimeMs: action.remainingRuntimeMs,
  });
  deps.logger.info(
    { oldPodId: old.podId, newPodId: created.row.podId, reason: action.reason },
    'pod recreated',
  );
  return { action, ok: true, note: `recreated ${old.podId} as ${created.row.podId} (${action.reason})` };
}
