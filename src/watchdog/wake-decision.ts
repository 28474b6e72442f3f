import type { PodRow } from '../state/pods.js';
import type { WakeRequest } from '../state/wake-requests.js';
import type { RunState, WatchConfig } from './decision.js';

/*
 * Wake on request, the pure half: a gateway with no ready pod wrote a wake request
 * into the state (it never holds the RunPod key); the watchdog decides here what to do with it.
 *
 * - A pod is ready already → dismiss (the gateway will find it within a second).
 * - Pods of the active run are starting (woken, recreated, replicas) → dismiss: one wake at a time.
 * - The active run's pods are stopped (idle_action "stop") → start them again.
 * - The active run has no pod, or the last run ended because its pods were terminated for
 *   idleness (idle_action "terminate") → create `replicas` pods in it (reopening it), with the
 *   runtime the run has left — never the 5-minute grace a dead pod gets: a wake must not carry a
 *   run past its limit.
 * - The runtime is used up, a budget (run, UTC day, UTC month) is reached or would be passed
 *   within one check at the group's price, or there is no run to wake → refuse, with the reason.
 * The request is cleared in every case; a later request asks again.
 */

/** Why a wake request is refused. */
export type WakeRefusal = 'runtime_limit' | 'budget_run' | 'budget_day' | 'budget_month' | 'no_run';

export type WakeDecision =
  | { type: 'none' }
  | { type: 'dismiss'; why: 'already_up' | 'starting' }
  | { type: 'start'; runId: string; podIds: string[] }
  | { type: 'create'; runId: string; count: number; remainingRuntimeMs: number | null; reopen: boolean }
  | { type: 'refuse'; reason: WakeRefusal; detail: string };

/** A run as the wake decision reads it (a {@link RunRow} fits). */
export type WakeRun = RunState & { endReason: string | null };

export interface WakeInput {
  wake: Pick<WakeRequest, 'requestedAt' | 'requests'> | null;
  /** The active run, else the newest run (how it ended says whether it can wake), else null. */
  run: WakeRun | null;
  /** The run's pods that have not ended. */
  pods: Array<Pick<PodRow, 'podId' | 'desired'>>;
  /** Ready routes the gateway could use right now. */
  readyRoutes: number;
  /** Booked spend of `run`, today and this month. */
  spend: { run: number; day: number; month: number };
  /** What one pod of the run bills per hour once running (its GPU type's price). */
  podPricePerHr: number;
  now: number;
  config: Pick<WatchConfig, 'checkIntervalMs' | 'dayBudgetUsd' | 'monthBudgetUsd' | 'replicas'>;
}

const HOUR_MS = 3_600_000;
const EPS = 1e-9;

/**
 * @example
 *   decideWake({ wake: pendingWake(state), run, pods, readyRoutes: 0, spend, podPricePerHr: 0.27, now, config })
 *   // { type: 'start', runId, podIds: ['abc'] }
 */
export function decideWake(input: WakeInput): WakeDecision {
  const { wake, run, now } = input;
  if (wake === null) return { type: 'none' };
  if (input.readyRoutes > 0) return { type: 'dismiss', why: 'already_up' };
  if (run === null)
    return { type: 'refuse', reason: 'no_run', detail: 'no run to wake: start one with `runpod-llm up`' };

  const active = run.endedAt === null;
  if (!active && run.endReason !== 'idle') {
    const reason = refusalFor(run.endReason);
    return {
      type: 'refuse',
      reason,
      detail: `the last run ended (${run.endReason ?? 'unknown'}); start a new one with \`runpod-llm up\``,
    };
  }
  if (active && input.pods.some((p) => p.desired === 'running')) return { type: 'dismiss', why: 'starting' };
  const stopped = active ? input.pods.filter((p) => p.desired === 'stopped').map((p) => p.podId) : [];
  const count = stopped.length > 0 ? stopped.length : input.config.replicas;

  const deadline = run.runtimeLimitMs === null ? null : run.startedAt + run.runtimeLimitMs;
  if (deadline !== null && now >= deadline) {
    return {
      type: 'refuse',
      reason: 'runtime_limit',
      detail: `the run's runtime limit passed at ${new Date(deadline).toISOString()}`,
    };
  }
  const over = budgetReached(input, run, count);
  if (over !== null) return over;

  if (stopped.length > 0) return { type: 'start', runId: run.runId, podIds: stopped };
  return {
    type: 'create',
    runId: run.runId,
    count,
    remainingRuntimeMs: deadline === null ? null : deadline - now,
    reopen: !active,
  };
}

/**
 * Whether the newest run, ended or not, could still be woken: it ended for idleness with
 * runtime and run budget left. The watchdog loop keeps running for such a run.
 */
export function canWake(run: WakeRun | null, spentOnRun: number, now: number): boolean {
  if (run === null || run.endedAt === null || run.endReason !== 'idle') return false;
  if (run.runtimeLimitMs !== null && now >= run.startedAt + run.runtimeLimitMs) return false;
  return run.budgetUsd === null || spentOnRun < run.budgetUsd - EPS;
}

/** Same rule as the watchdog's budgets: reached, or passed before the next check at the group's rate. */
function budgetReached(input: WakeInput, run: WakeRun, count: number): WakeDecision | null {
  const rate = count * Math.max(0, input.podPricePerHr);
  const projection = (rate * input.config.checkIntervalMs) / HOUR_MS;
  const caps: Array<[WakeRefusal, number | null, number, string]> = [
    ['budget_run', run.budgetUsd, input.spend.run, 'run'],
    ['budget_day', input.config.dayBudgetUsd, input.spend.day, 'daily'],
    ['budget_month', input.config.monthBudgetUsd, input.spend.month, 'monthly'],
  ];
  for (const [reason, cap, spent, name] of caps) {
    if (cap === null) continue;
    if (spent >= cap - EPS || spent + projection > cap + EPS) {
      return {
        type: 'refuse',
        reason,
        detail: `the ${name} budget of $${cap.toFixed(2)} is reached ($${spent.toFixed(4)} spent; ${count} pod(s) at $${rate.toFixed(2)}/h would pass it before the next check)`,
      };
    }
  }
  return null;
}

function refusalFor(endReason: string | null): WakeRefusal {
  return endReason === 'runtime_limit' ||
    endReason === 'budget_run' ||
    endReason === 'budget_day' ||
    endReason === 'budget_month'
    ? endReason
    : 'no_run';
}
