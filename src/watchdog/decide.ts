import { remainingRuntimeMs } from '../lifecycle/remaining-runtime.js';
import {
  type Action,
  DEFAULT_HEALTH_FAIL_PASSES,
  DEFAULT_MAX_RECREATIONS,
  type DecideInput,
  type LivePod,
  type OurPod,
  type RecreateReason,
  type RunEndReason,
  type RunState,
  type TerminateReason,
} from './decision.js';

const HOUR_MS = 3_600_000;
/** Float slack for money comparisons (cents accumulate as binary fractions). */
const EPS = 1e-9;

/**
 * The watchdog's pure decision: given the state, RunPod's view, usage, spend and the time,
 * returns what to do. No I/O, no clock: tested as a table in simulated time.
 *
 * Rules, in priority order (each with its reason):
 * 1. RunPod unreachable → only `noop_unreachable`. Acting blind could terminate healthy pods
 *    or create duplicates; the next pass retries.
 * 2. Accrue each known live pod's cost since its last accrual at its billed rate (RunPod bills
 *    per second; `cost` is 0 when stopped), so budgets see money as it is spent.
 * 3. Pods outside the active run are leftovers (a `down` or an end that did not finish):
 *    terminate them, or end their row when RunPod no longer has them.
 * 4. A pod whose state says terminated is terminated again until RunPod confirms it is gone.
 * 5. Runtime limit: a pod is terminated once `now ≥ run.startedAt + run.runtimeLimitMs` (or
 *    the later `createdAt + runtimeLimitMs` of a pod recreated with the 5-minute minimum).
 *    RunPod's own timers are not enforced (docs/runpod-contract.md): this is the only limit.
 * 6. Budgets (run, UTC day, UTC month; each optional): terminate every pod of the run when the
 *    booked spend plus this pass's accrual reaches the cap, or would pass it before the next check
 *    (projected: current $/h of all pods × interval). The sum over all pods counts (replicas).
 * 7. Idle: no gateway request for ≥ idle limit, counted from the last request or, when that is
 *    older (or there was none), from the first ready time of the run's running pods. A group that
 *    has never been ready is booting, not idle (the readiness timeout covers that). Then stop
 *    (resume is fast, the volume stays) or terminate, per config, the whole group.
 * 8a. A guarded pod found EXITED when the manager last reached it (its last accrual, or its
 *    ready time) a whole lease ago or more stopped itself because the manager was away (a
 *    closed laptop): it is parked (`mark_stopped`, reason `manager_away`), not recreated —
 *    nobody was there to use it; a request (wake on request) or `up` brings it back.
 * 8. A pod the state wants running that RunPod shows EXITED, ERROR, TERMINATED, gone, or RUNNING
 *    with zero GPUs on two polls (with a nonzero uptime) is recreated (terminate + create rather
 *    than start: a restarted pod can come back without GPUs) with the remaining runtime, at least
 *    `minRecreateRuntimeMs` — unless the run's runtime is used up (rule 5 ends it instead; budgets
 *    already ended it in rule 6). So is a routed pod that RunPod restarted (its uptime went
 *    backwards: the process crashed and RunPod restarts it in place, RUNNING throughout) or whose
 *    health failed on `healthFailPasses` consecutive passes. At most `maxRecreations` per run:
 *    past that the pod is terminated (`recreate_limit`) and, with no pod left, the run ends —
 *    a model that cannot load must not burn money in a loop of new pods.
 * 9. Replicas: while the group is up (some pod wanted running, not idle), missing pods are created.
 *    A parked group (all stopped) is not refilled: waking is a wake request's job.
 * 10. When every pod of the run ends for a limit, budget or idle-terminate, the run ends too.
 * 11. Orphans (ours by name, unknown to the state) are reported, and terminated with `reap` —
 *    except pods another install created (their `RUNPOD_LLM_INSTALL` env differs): another
 *    machine's runpod-llm on the same account, reported and never reaped.
 * A pod missing from `live` is kept untouched: no information, no action.
 *
 * @example
 *   const actions = decide({ run, pods, live, usage: { lastRequestAt }, spend,
 *     now: clock.now(), config, foreignPods: [] });
 */
export function decide(input: DecideInput): Action[] {
  const { run, pods, live, now, config } = input;
  if (live === 'unreachable') return [{ type: 'noop_unreachable' }];

  const actions: Action[] = [];
  const activeRun = run !== null && run.endedAt === null ? run : null;
  const runPods = activeRun === null ? [] : pods.filter((p) => p.runId === activeRun.runId);
  const leftovers = pods.filter((p) => !runPods.includes(p));
  const liveOf = (p: OurPod): LivePod | 'not_found' | undefined => live.get(p.podId);

  // Rule 2: accrual.
  const accrued = new Map<string, number>();
  for (const pod of pods) {
    const l = liveOf(pod);
    if (l === undefined || l === 'not_found') continue;
    const since = pod.accruedUntil ?? pod.createdAt;
    if (now <= since) continue;
    const usd = (Math.max(0, l.costPerHr) * (now - since)) / HOUR_MS;
    accrued.set(pod.podId, usd);
    actions.push({ type: 'accrue', podId: pod.podId, usd, until: now });
  }

  // Rule 3: leftovers.
  for (const pod of leftovers) {
    const l = liveOf(pod);
    if (l === undefined) actions.push({ type: 'keep', podId: pod.podId });
    else if (isGone(l))
      actions.push({ type: 'mark_ended', podId: pod.podId, reason: pod.endReason ?? 'gone' });
    else {
      const reason = pod.desired === 'terminated' ? 'retry' : 'run_ended';
      actions.push({ type: 'terminate', podId: pod.podId, reason });
    }
  }

  if (activeRun !== null) actions.push(...decideRun(input, activeRun, runPods, accrued));

  // Rule 11: pods a failed or repeated create left behind (ours, unwanted), then orphans.
  for (const stray of input.strayCreates ?? []) {
    if (stray.status === 'TERMINATED') continue;
    actions.push({ type: 'terminate', podId: stray.id, reason: 'stray_create' });
  }
  for (const orphan of input.foreignPods) {
    if (orphan.status === 'TERMINATED') continue;
    actions.push({ type: 'report_orphan', podId: orphan.id, name: orphan.name });
    if (config.reap) actions.push({ type: 'terminate', podId: orphan.id, reason: 'orphan' });
  }
  for (const other of input.otherInstallPods ?? []) {
    if (other.status === 'TERMINATED') continue;
    actions.push({ type: 'report_orphan', podId: other.id, name: other.name, otherInstall: true });
  }
  return actions;
}

function decideRun(
  input: DecideInput,
  run: RunState,
  runPods: OurPod[],
  accrued: Map<string, number>,
): Action[] {
  const { now, config, pods } = input;
  const live = input.live as Map<string, LivePod | 'not_found'>;
  const runDeadline = run.runtimeLimitMs === null ? null : run.startedAt + run.runtimeLimitMs;
  const runtimeUsedUp = runDeadline !== null && now >= runDeadline;
  const podDeadline = (p: OurPod): number | null => {
    if (runDeadline === null || p.runtimeLimitMs === null) return runDeadline;
    return Math.max(runDeadline, p.createdAt + p.runtimeLimitMs);
  };

  // Rule 6: budgets.
  const ratePerHr = (set: OurPod[]): number =>
    set.reduce((sum, p) => {
      const l = live.get(p.podId);
      const billing = l !== undefined && l !== 'not_found' && p.desired !== 'terminated';
      return billing ? sum + Math.max(0, l.costPerHr) : sum;
    }, 0);
  const pending = (set: OurPod[]): number => set.reduce((sum, p) => sum + (accrued.get(p.podId) ?? 0), 0);
  const projection = config.checkIntervalMs / HOUR_MS;
  const over = (cap: number | null, spent: number, rate: number): boolean =>
    cap !== null && (spent >= cap - EPS || spent + rate * projection > cap + EPS);
  const caps: [TerminateReason, number | null, number, number][] = [
    ['budget_run', run.budgetUsd, input.spend.run + pending(runPods), ratePerHr(runPods)],
    ['budget_day', config.dayBudgetUsd, input.spend.day + pending(pods), ratePerHr(pods)],
    ['budget_month', config.monthBudgetUsd, input.spend.month + pending(pods), ratePerHr(pods)],
  ];
  const budgetReason = caps.find(([, cap, spent, rate]) => over(cap, spent, rate))?.[0] ?? null;

  // Rule 7: idleness of the group.
  const running = runPods.filter((p) => p.desired === 'running');
  const readyTimes = running.flatMap((p) => (p.readyAt === null ? [] : [p.readyAt]));
  let idle = false;
  if (config.idleLimitMs !== null && readyTimes.length > 0) {
    const idleSince = Math.max(input.usage.lastRequestAt ?? -Infinity, Math.min(...readyTimes));
    idle = now - idleSince >= config.idleLimitMs;
  }
  const idleTerminate = idle && config.idleAction === 'terminate';

  const ctx: PodContext = {
    now,
    budgetReason,
    idle,
    idleTerminate,
    runtimeUsedUp,
    remainingRuntime: remainingRuntimeMs(run, now, config.minRecreateRuntimeMs),
    podDeadline,
    leaseMs: config.leaseMs ?? null,
    healthFailPasses: config.healthFailPasses ?? DEFAULT_HEALTH_FAIL_PASSES,
    recreationsLeft:
      config.maxRecreations === null
        ? Infinity
        : (config.maxRecreations ?? DEFAULT_MAX_RECREATIONS) - (input.recreations ?? 0),
    recreateLimitHit: false,
  };
  const actions: Action[] = [];
  let remaining = 0; // pods that stay part of the group after this pass
  let groupUp = false; // some pod stays wanted running
  for (const pod of runPods) {
    const verdict = decidePod(pod, live.get(pod.podId), ctx);
    actions.push(verdict.action);
    if (verdict.stays) remaining++;
    if (verdict.up) groupUp = true;
  }

  // Rule 9: replicas.
  const stopping = runtimeUsedUp || budgetReason !== null || idle;
  if (groupUp && !stopping) {
    for (let i = remaining; i < config.replicas; i++) {
      actions.push({
        type: 'create',
        runId: run.runId,
        remainingRuntimeMs: ctx.remainingRuntime,
        reason: 'replicas',
      });
    }
  }

  // Rule 10: the run ends with its last pod.
  const endReason: RunEndReason | null = runtimeUsedUp
    ? 'runtime_limit'
    : ((budgetReason as RunEndReason | null) ??
      (idleTerminate ? 'idle' : ctx.recreateLimitHit ? 'recreate_limit' : null));
  if (remaining === 0 && endReason !== null)
    actions.push({ type: 'end_run', runId: run.runId, reason: endReason });
  return actions;
}

interface PodContext {
  now: number;
  budgetReason: TerminateReason | null;
  idle: boolean;
  idleTerminate: boolean;
  runtimeUsedUp: boolean;
  remainingRuntime: number | null;
  podDeadline: (p: OurPod) => number | null;
  leaseMs: number | null;
  healthFailPasses: number;
  /** Recreations this pass may still order (counts down). */
  recreationsLeft: number;
  recreateLimitHit: boolean;
}

/** One pod's action; `stays`: still part of the group afterwards; `up`: wanted running. */
interface PodVerdict {
  action: Action;
  stays: boolean;
  up: boolean;
}

function decidePod(pod: OurPod, l: LivePod | 'not_found' | undefined, ctx: PodContext): PodVerdict {
  const podId = pod.podId;
  const verdict = (action: Action, stays: boolean, up = false): PodVerdict => ({ action, stays, up });
  // Terminate what still exists; only book the end of what RunPod no longer has.
  const end = (gone: boolean, reason: string): PodVerdict =>
    verdict(
      gone
        ? { type: 'mark_ended', podId, reason }
        : { type: 'terminate', podId, reason: reason as TerminateReason },
      false,
    );

  if (l === undefined) {
    // No information: never act blind.
    return verdict({ type: 'keep', podId }, pod.desired !== 'terminated', pod.desired === 'running');
  }
  const gone = isGone(l);
  // Rule 4.
  if (pod.desired === 'terminated') return gone ? end(true, pod.endReason ?? 'gone') : end(false, 'retry');

  // Rules 5, 6 and 7 (terminate): the pod's life is over.
  const deadline = ctx.podDeadline(pod);
  const final: TerminateReason | null =
    deadline !== null && ctx.now >= deadline
      ? 'runtime_limit'
      : (ctx.budgetReason ?? (ctx.idleTerminate ? 'idle' : null));
  if (final !== null) return end(gone, final);

  const status = l === 'not_found' || gone ? 'GONE' : l.status;
  if (pod.desired === 'stopped' || ctx.idle) {
    // Rule 7 (stop), and keeping a parked pod parked.
    const parked = pod.desired === 'stopped';
    if (status === 'GONE') return verdict({ type: 'mark_ended', podId, reason: 'gone' }, false);
    if (status === 'EXITED') {
      return verdict(
        parked ? { type: 'keep', podId } : { type: 'mark_stopped', podId, reason: 'idle' },
        true,
      );
    }
    if (status === 'ERROR') {
      // A broken pod nobody uses: keep a parked one for a later wake, else end it.
      return parked ? verdict({ type: 'keep', podId }, true) : end(false, 'idle');
    }
    return verdict({ type: 'stop', podId, reason: 'idle' }, true);
  }

  // Rule 8a: it stopped itself while the manager was away.
  if (
    status === 'EXITED' &&
    pod.guard !== null &&
    pod.readyAt !== null &&
    ctx.leaseMs !== null &&
    ctx.now - Math.max(pod.accruedUntil ?? 0, pod.readyAt) >= ctx.leaseMs
  ) {
    return verdict({ type: 'mark_stopped', podId, reason: 'manager_away' }, true);
  }

  // Rule 8: the pod should be running.
  const present = l === 'not_found' ? undefined : l;
  const routed = pod.readyAt !== null && status === 'RUNNING';
  const broken: RecreateReason | null =
    status === 'ERROR'
      ? 'error'
      : status === 'EXITED' || status === 'GONE'
        ? 'died'
        : present !== undefined && present.gpuCount === 0 && (present.zeroGpuPolls ?? 0) >= 2
          ? 'zero_gpus'
          : routed && present?.restarted === true
            ? 'restarted'
            : routed && (present?.healthFails ?? 0) >= ctx.healthFailPasses
              ? 'unhealthy'
              : null;
  if (broken === null) return verdict({ type: 'keep', podId }, true, true);
  // Broken during its post-limit grace (rule 5's minimum): end it, never recreate.
  if (ctx.runtimeUsedUp) return end(gone, 'runtime_limit');
  if (ctx.recreationsLeft <= 0) {
    ctx.recreateLimitHit = true;
    return end(gone, 'recreate_limit');
  }
  ctx.recreationsLeft -= 1;
  return verdict(
    { type: 'recreate', podId, remainingRuntimeMs: ctx.remainingRuntime, reason: broken },
    true,
    true,
  );
}

function isGone(l: LivePod | 'not_found'): boolean {
  return l === 'not_found' || l.status === 'TERMINATED';
}
