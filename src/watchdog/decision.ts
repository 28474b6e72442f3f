import type { PodRow } from '../state/pods.js';
import type { RunRow } from '../state/runs.js';

/**
 * The watchdog decision's vocabulary (types and defaults only): what `decide` reads (the run,
 * our pods, RunPod's view, usage, spend, the configuration) and the actions it returns.
 */

/** RunPod pod statuses (REST v2). */
export type LivePodStatus = 'PROVISIONING' | 'STARTING' | 'RUNNING' | 'EXITED' | 'ERROR' | 'TERMINATED';

/** What RunPod says about a pod right now; the watchdog adapts the client's Pod to this. */
export interface LivePod {
  id: string;
  name: string;
  status: LivePodStatus;
  /** Billed USD/hour now (RunPod reports 0 when EXITED or TERMINATED). */
  costPerHr: number;
  /** GPUs attached now; 0 after a restart that lost its GPUs (docs/runpod-contract.md). */
  gpuCount: number;
  startedAt: number | null;
  /** Between passes (see `observePod` in pod-observation.ts): RunPod restarted the container since the last pass. */
  restarted?: boolean;
  /** Consecutive passes whose health check of this (routed) pod failed. */
  healthFails?: number;
  /** Consecutive polls that saw it RUNNING, up for a while, with zero GPUs. */
  zeroGpuPolls?: number;
}

/** The fields of a state pod row the decision needs (a {@link PodRow} fits). */
export type OurPod = Pick<
  PodRow,
  | 'podId'
  | 'runId'
  | 'desired'
  | 'createdAt'
  | 'readyAt'
  | 'runtimeLimitMs'
  | 'accruedUntil'
  | 'endReason'
  | 'guard'
>;

/** The fields of a state run row the decision needs (a {@link RunRow} fits). */
export type RunState = Pick<RunRow, 'runId' | 'startedAt' | 'runtimeLimitMs' | 'budgetUsd' | 'endedAt'>;

export interface WatchConfig {
  /** Time until the next pass; budgets project the cost of this much more billing. */
  checkIntervalMs: number;
  /** No gateway request for this long → idle action. null: never idle. */
  idleLimitMs: number | null;
  idleAction: 'stop' | 'terminate';
  /** Spend caps across runs, per UTC day and month. null: no cap. (The run cap is `run.budgetUsd`.) */
  dayBudgetUsd: number | null;
  monthBudgetUsd: number | null;
  /** Terminate pods named `runpod-llm-*` that the state does not know (`watch --reap`). */
  reap: boolean;
  /** Pods the run keeps; 1 for a single pod. */
  replicas: number;
  /** A recreated pod gets at least this much runtime (the original Python tool's 5 minutes). */
  minRecreateRuntimeMs: number;
  /**
   * The guard's lease (`manager.pod_lease`; null: none): a guarded pod the manager has not
   * reached for this long stops itself. Optional for callers that predate it.
   */
  leaseMs?: number | null;
  /** A routed pod whose health fails on this many consecutive passes is dead (default 3). */
  healthFailPasses?: number;
  /** Recreations allowed per run (default 3; null: no bound). */
  maxRecreations?: number | null;
}

export const DEFAULT_HEALTH_FAIL_PASSES = 3;
export const DEFAULT_MAX_RECREATIONS = 3;

export interface DecideInput {
  /** The active run, or null when none (then every pod left in `pods` is a leftover to end). */
  run: RunState | null;
  /** Our pods that have not ended (`listActivePods`). */
  pods: OurPod[];
  /** RunPod's view of each of `pods`, or 'unreachable' when RunPod could not be asked. */
  live: Map<string, LivePod | 'not_found'> | 'unreachable';
  /** From the gateway's usage (global scope). */
  usage: { lastRequestAt: number | null };
  /** Already booked spend (before this pass's accrual). */
  spend: { run: number; day: number; month: number };
  now: number;
  config: WatchConfig;
  /** Live pods named `runpod-llm-*` that the state does not know (ours or untagged). */
  foreignPods: LivePod[];
  /**
   * Pods of this install named like one of our creates that failed or was repeated (see
   * `strayCreateNames`): terminated without `--reap`, since we know nobody wants them.
   */
  strayCreates?: LivePod[];
  /** Live `runpod-llm-*` pods another install created (their env says so): reported, never reaped. */
  otherInstallPods?: LivePod[];
  /** Pods this run has recreated so far (against `config.maxRecreations`). */
  recreations?: number;
}

export type TerminateReason =
  | 'runtime_limit'
  | 'budget_run'
  | 'budget_day'
  | 'budget_month'
  | 'idle'
  | 'orphan'
  /** The state already wanted it terminated (earlier pass or `down`) but RunPod still has it. */
  | 'retry'
  /** The pod belongs to no active run. */
  | 'run_ended'
  /**
   * A pod of this install carrying the name of a create that failed or was repeated: RunPod
   * created it late (after the create gave up listing for it), so nothing owns it and it bills.
   */
  | 'stray_create'
  /** It needed replacing, but the run has used up its recreations (`max_recreations`). */
  | 'recreate_limit';

/**
 * Why a pod is replaced: `died` (EXITED/gone), `error`, `zero_gpus` (two polls), `restarted`
 * (RunPod restarted its container: the process crashed), `unhealthy` (health failed N passes).
 */
export type RecreateReason = 'died' | 'error' | 'zero_gpus' | 'restarted' | 'unhealthy';
export type RunEndReason =
  'runtime_limit' | 'budget_run' | 'budget_day' | 'budget_month' | 'idle' | 'recreate_limit';

/**
 * What the watchdog loop must do. Order matters: `accrue` actions come first (book the cost
 * before ending anything), then one action per pod, then `create`, `end_run`, orphans.
 */
export type Action =
  /** Leave the pod as it is. */
  | { type: 'keep'; podId: string }
  /** Book `usd` for the pod and set its `accruedUntil` to `until`. Bookkeeping; not audited. */
  | { type: 'accrue'; podId: string; usd: number; until: number }
  /** Record desired=terminated with the reason, then DELETE the pod on RunPod. */
  | { type: 'terminate'; podId: string; reason: TerminateReason }
  /** Record desired=stopped, mark its route not ready, then stop the pod on RunPod. */
  | { type: 'stop'; podId: string; reason: 'idle' }
  /**
   * The pod is already EXITED: only record desired=stopped (RunPod answers 409 to stop).
   * `manager_away`: its guard stopped it because no watchdog reached it for the lease.
   */
  | { type: 'mark_stopped'; podId: string; reason: 'idle' | 'manager_away' }
  /**
   * Terminate the broken pod if it still exists, create a replacement (same GPU, model, key
   * policy) with `remainingRuntimeMs` (null: no limit), end the old row, route the new one.
   */
  | { type: 'recreate'; podId: string; remainingRuntimeMs: number | null; reason: RecreateReason }
  /** Create one more pod for the run (replica count below `config.replicas`). */
  | { type: 'create'; runId: string; remainingRuntimeMs: number | null; reason: 'replicas' }
  /** The pod is gone on RunPod: end its row (and its route). No API call. */
  | { type: 'mark_ended'; podId: string; reason: string }
  /** Every pod of the run is ending for `reason`: end the run, clear its routes. */
  | { type: 'end_run'; runId: string; reason: RunEndReason }
  | { type: 'report_orphan'; podId: string; name: string; otherInstall?: boolean }
  /** RunPod could not be asked: do nothing destructive, log, retry next pass. */
  | { type: 'noop_unreachable' };
