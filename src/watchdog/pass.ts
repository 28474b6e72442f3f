import {
  isOurPodName,
  isYoungProbePod,
  listActivePods,
  listPods,
  strayCreateNames,
  updatePodSeen,
} from '../state/pods.js';
import { prunePodWatch } from '../state/pod-watch.js';
import { appendAudit } from '../state/audit.js';
import { installId, podInstall } from '../state/install.js';
import { activeRun, endRun, lastRun } from '../state/runs.js';
import { spendForRun, spendSummary } from '../state/spend.js';
import { readUsage } from '../state/usage.js';
import { decide } from './decide.js';
import type { LivePod, WatchConfig } from './decision.js';
import { type DecideLive, readLive, toLivePod } from './read-live.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import { renewLeases } from '../lifecycle/lease.js';
import { checkPendingPods } from './pending-pods.js';
import { type RunSettings, settingsOfRun } from '../lifecycle/run-settings.js';
import type { GatewayRevival } from '../daemons/gateway-daemon.js';
import { executeAction } from './execute-action.js';
import { canWake } from './wake-decision.js';
import type { WatchReport } from './report.js';
import { handleWake } from './serve-wake.js';

/**
 * One watchdog pass: read the state, RunPod's view and the gateway's usage, let the pure
 * `decide` say what to do, do it, and audit each action with its reason. Then look after pods
 * still starting (recreated ones): route them once ready, end them after the readiness timeout.
 * The caller holds the manager lock.
 */
export interface WatchOptions {
  /** Time to the next pass (budgets project this much more billing). */
  intervalMs: number;
  /** Terminate pods named `runpod-llm-*` that the state does not know. */
  reap: boolean;
  /** Today's configuration: fills run settings, and serves when no run is active. */
  fallback: RunSettings;
  /**
   * The gateways wake pods on request (`wake_on_request`): a run parked by idleness stays
   * wakeable, so the loop keeps running for it. Pending wake requests are served either way.
   */
  wakeOnRequest?: boolean;
  /** Start again a gateway `up` started that has died (`reviveGateway` in daemons/gateway-daemon.ts). */
  reviveGateway?: () => Promise<GatewayRevival | null>;
}

export async function watchOnce(deps: ManagerDeps, options: WatchOptions): Promise<WatchReport> {
  const { state, clock } = deps;
  const now = clock.now();
  const run = activeRun(state) ?? null;
  const pods = listActivePods(state);
  const settings = run === null ? options.fallback : settingsOfRun(run.config, options.fallback);

  const seen = await readLive(deps, pods, settings);
  const live: DecideLive | 'unreachable' = seen.kind === 'ok' ? seen.live : 'unreachable';
  const known = new Set(pods.map((p) => p.podId));
  const unknown =
    seen.kind === 'ok'
      ? seen.all.filter(
          (p) =>
            isOurPodName(p.name) &&
            !known.has(p.id) &&
            p.status !== 'TERMINATED' &&
            // A running `doctor --live` owns its probe pod (and ends it); one that outlived any doctor is an orphan.
            !isYoungProbePod(p, now),
        )
      : [];
  // Another machine's runpod-llm on the same account: reported, never reaped.
  const install = installId(state.home);
  const foreignPods: LivePod[] = [];
  const otherInstallPods: LivePod[] = [];
  const strayCreates: LivePod[] = [];
  const strayNames = unknown.length === 0 ? new Set<string>() : strayCreateNames(state, now);
  for (const p of unknown) {
    const tag = podInstall(p.env, install);
    if (tag === 'other') otherInstallPods.push(toLivePod(p));
    else if (tag === 'ours' && strayNames.has(p.name)) strayCreates.push(toLivePod(p));
    else foreignPods.push(toLivePod(p));
  }

  if (live !== 'unreachable') {
    for (const pod of pods) {
      const l = live.get(pod.podId);
      if (l !== undefined && l !== 'not_found')
        updatePodSeen(state, pod.podId, { status: l.status, costPerHr: l.costPerHr, startedAt: l.startedAt });
    }
  }

  const config: WatchConfig = {
    checkIntervalMs: options.intervalMs,
    idleLimitMs: settings.idleLimitMs,
    idleAction: settings.idleAction,
    dayBudgetUsd: settings.dailyBudgetUsd,
    monthBudgetUsd: settings.monthlyBudgetUsd,
    reap: options.reap,
    replicas: settings.replicas,
    minRecreateRuntimeMs: settings.minRecreateRuntimeMs,
    leaseMs: settings.guarded ? settings.podLeaseMs : null,
    healthFailPasses: settings.healthFailPasses,
    maxRecreations: settings.maxRecreations,
  };
  const actions = decide({
    run,
    pods,
    live,
    usage: { lastRequestAt: readUsage(state).total.lastRequestAt },
    spend: spendSummary(state, run?.runId ?? null, now),
    now,
    config,
    foreignPods,
    strayCreates,
    otherInstallPods,
    recreations:
      run === null
        ? 0
        : listPods(state, 1_000).filter((p) => p.runId === run.runId && p.replacesPodId !== null).length,
  });

  const report: WatchReport = {
    at: now,
    runId: run?.runId ?? null,
    actions: [],
    unreachable: seen.kind === 'unreachable' ? seen.error : null,
    orphans: [],
    pending: 0,
    activePods: 0,
    runActive: false,
    wakeable: false,
  };
  const ctx = {
    deps,
    run,
    settings,
    pods: new Map(pods.map((p) => [p.podId, p])),
    live,
    now,
    unreachableError: report.unreachable,
  };
  for (const action of actions) {
    const result = await executeAction(ctx, action);
    if (action.type === 'report_orphan')
      report.orphans.push({
        podId: action.podId,
        name: action.name,
        ...(action.otherInstall === true ? { otherInstall: true } : {}),
      });
    if (action.type !== 'keep' && action.type !== 'accrue') report.actions.push(result);
  }

  if (live !== 'unreachable' && run !== null) {
    const kept = new Set(actions.flatMap((a) => (a.type === 'keep' ? [a.podId] : [])));
    const pending = await checkPendingPods(deps, { run, settings, live, kept });
    report.actions.push(...pending.results);
    report.pending = pending.waiting;
  }
  // A run left with no pod at all (its replacement failed for good) would otherwise stay "active"
  // for ever with nothing to watch or bill: end it, visibly.
  if (
    live !== 'unreachable' &&
    run !== null &&
    activeRun(state)?.runId === run.runId &&
    listActivePods(state, run.runId).length === 0
  ) {
    endRun(state, run.runId, 'no_pod', now);
    appendAudit(state, { action: 'end_run', reason: 'no_pod', at: now, details: { runId: run.runId } });
    report.actions.push({
      action: { type: 'end_run_without_pod', runId: run.runId },
      ok: true,
      note: 'run ended: it has no pod left',
    });
  }
  // Last, on the state as this pass left it: a run ended just now for its limit is not woken.
  if (live !== 'unreachable') {
    const woke = await handleWake(deps, { fallback: options.fallback, config });
    if (woke.result !== null) report.actions.push(woke.result);
    report.pending += woke.starting;
  }
  const revived = await options.reviveGateway?.();
  if (revived != null) {
    report.actions.push({
      action: { type: 'restart_gateway', port: revived.port },
      ok: revived.kind === 'restarted',
      note: revived.note,
    });
  }
  // The manager is here: renew the guards' leases (even when RunPod's API is unreachable).
  if (settings.guarded && settings.podLeaseMs !== null)
    await renewLeases(deps, { podUrlTemplate: settings.podUrlTemplate });
  prunePodWatch(state);
  report.activePods = listActivePods(state).length;
  report.runActive = activeRun(state) !== undefined;
  if (!report.runActive && options.wakeOnRequest === true) {
    const last = lastRun(state) ?? null;
    report.wakeable = canWake(last, last === null ? 0 : spendForRun(state, last.runId), clock.now());
  }
  return report;
}
