import { appendAudit } from '../state/audit.js';
import { listActivePods, type PodRow } from '../state/pods.js';
import { listReadyRoutes } from '../state/routes.js';
import { activeRun, endRun, lastRun, reopenRun, type RunRow } from '../state/runs.js';
import { spendSummary } from '../state/spend.js';
import { clearWake, pendingWake, type WakeRequest } from '../state/wake-requests.js';
import { candidatesFor, createPodForRun } from '../lifecycle/create-pod.js';
import type { WatchConfig } from './decision.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import { startStoppedPod } from '../lifecycle/resume.js';
import { type RunSettings, settingsOfRun } from '../lifecycle/run-settings.js';
import { decideWake, type WakeDecision } from './wake-decision.js';
import type { ActionResult } from './report.js';

export interface WakeOutcome {
  /** For the pass report; null when there was nothing to report (no request, or dismissed). */
  result: ActionResult | null;
  /** Pods now starting because of the wake (the loop polls faster while they boot). */
  starting: number;
}

/**
 * The thin half of wake on request: reads the pending request and the state after this pass's
 * other actions (so a run the watchdog just ended for its limit is not woken), lets
 * {@link decideWake} decide, does it, audits it, and clears the request. Start and create only
 * ask RunPod: the watchdog's next passes route the pods once ready (`checkPendingPods`). The
 * caller holds the manager lock and knows RunPod is reachable.
 */
export async function handleWake(
  deps: ManagerDeps,
  input: { fallback: RunSettings; config: WatchConfig },
): Promise<WakeOutcome> {
  const { state, clock, logger } = deps;
  const wake = pendingWake(state);
  if (wake === null) return { result: null, starting: 0 };
  const now = clock.now();
  const run = activeRun(state) ?? lastRun(state) ?? null;
  const settings = run === null ? input.fallback : settingsOfRun(run.config, input.fallback);
  const pods = run === null || run.endedAt !== null ? [] : listActivePods(state, run.runId);
  const decision = decideWake({
    wake,
    run,
    pods,
    readyRoutes: listReadyRoutes(state).length,
    spend: spendSummary(state, run?.runId ?? null, now),
    podPricePerHr: priceOf(settings, pods[0]),
    now,
    config: { ...input.config, replicas: settings.replicas },
  });
  const details = { requests: wake.requests, waitedMs: now - wake.requestedAt };

  switch (decision.type) {
    case 'none':
      return { result: null, starting: 0 };
    case 'dismiss':
      clearWake(state, now);
      logger.debug({ why: decision.why }, 'wake request dismissed');
      return { result: null, starting: 0 };
    case 'refuse':
      clearWake(state, now);
      appendAudit(state, {
        action: 'wake_refused',
        reason: decision.reason,
        at: now,
        details: { ...details, detail: decision.detail },
      });
      logger.warn({ reason: decision.reason, detail: decision.detail }, 'wake request refused');
      return {
        result: {
          action: { type: 'wake_refused', reason: decision.reason },
          ok: true,
          note: `wake refused: ${decision.detail}`,
        },
        starting: 0,
      };
    case 'start':
    case 'create':
      if (run === null) return { result: null, starting: 0 };
      try {
        return await wakeRun(deps, { run, settings, pods, decision, wake, details });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        clearWake(state, now);
        appendAudit(state, {
          action: 'wake_failed',
          reason: 'request',
          at: now,
          details: { ...details, error: message },
        });
        logger.error({ err: message }, 'waking the run failed; the next request asks again');
        return {
          result: { action: { type: 'wake', how: decision.type, podIds: [] }, ok: false, note: message },
          starting: 0,
        };
      }
  }
}

async function wakeRun(
  deps: ManagerDeps,
  input: {
    run: RunRow;
    settings: RunSettings;
    pods: PodRow[];
    decision: Extract<WakeDecision, { type: 'start' | 'create' }>;
    wake: WakeRequest;
    details: Record<string, unknown>;
  },
): Promise<WakeOutcome> {
  const { state, clock, logger } = deps;
  const { run, settings, decision } = input;
  const podIds: string[] = [];
  let how: 'start' | 'create' = decision.type;
  if (decision.type === 'start') {
    for (const pod of input.pods.filter((p) => decision.podIds.includes(p.podId))) {
      if ((await startStoppedPod(deps, pod, 'wake')) === 'started') podIds.push(pod.podId);
    }
  }
  if (podIds.length === 0) {
    // Nothing to start (terminated for idleness, or the stopped pods vanished): create the group.
    how = 'create';
    const deadline = run.runtimeLimitMs === null ? null : run.startedAt + run.runtimeLimitMs;
    const runtime =
      decision.type === 'create'
        ? decision.remainingRuntimeMs
        : deadline === null
          ? null
          : deadline - clock.now();
    const reopened = decision.type === 'create' && decision.reopen;
    if (reopened && !reopenRun(state, run.runId))
      throw new Error(`run ${run.runId} could not be reopened (another run is active)`);
    const live: RunRow = { ...run, endedAt: null, endReason: null };
    const count = decision.type === 'create' ? decision.count : settings.replicas;
    try {
      for (let i = 0; i < count; i++) {
        const created = await createPodForRun(deps, {
          run: live,
          settings,
          candidates: candidatesFor(settings, undefined),
          runtimeLimitMs: runtime,
          reason: 'wake',
        });
        podIds.push(created.row.podId);
      }
    } catch (err) {
      if (podIds.length === 0) {
        // Back to parked-for-idleness, so a later request can try again.
        if (reopened) endRun(state, run.runId, 'idle', clock.now());
        throw err;
      }
      logger.warn(
        { err: (err as Error).message, created: podIds.length, wanted: count },
        'woke fewer pods than the run keeps; the watchdog creates the rest',
      );
    }
  }
  const now = clock.now();
  clearWake(state, now);
  appendAudit(state, {
    action: 'wake',
    reason: 'request',
    at: now,
    details: { ...input.details, how, pods: podIds, runId: run.runId },
  });
  logger.info({ how, pods: podIds, requests: input.wake.requests }, 'woke the run for a request');
  return {
    result: {
      action: { type: 'wake', how, podIds },
      ok: true,
      note: `${how === 'start' ? 'started' : 'created'} ${podIds.join(', ')} for a request`,
    },
    starting: podIds.length,
  };
}

/** The billed rate of one pod once running: its GPU type's planned price (a stopped pod shows 0). */
function priceOf(settings: RunSettings, pod: PodRow | undefined): number {
  const planned = candidatesFor(settings, pod)[0]?.pricePerHr ?? 0;
  return Math.max(planned, pod?.costPerHr ?? 0);
}
