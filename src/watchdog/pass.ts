import type { PodList } from '../runpod/client.js';
import type { Pod } from '../runpod/schemas.js';
import { isOurPodName, listActivePods, listPods, type PodRow, updatePodSeen } from '../state/pods.js';
import { getPodWatch, prunePodWatch, setPodWatch } from '../state/pod-watch.js';
import { appendAudit } from '../state/audit.js';
import { installId, podInstall } from '../state/install.js';
import { activeRun, endRun, lastRun } from '../state/runs.js';
import { spendForRun, spendSummary } from '../state/spend.js';
import { readUsage } from '../state/usage.js';
import { decide, type LivePod, type WatchConfig } from './decide.js';
import { observePod } from './pod-observation.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import { renewLeases } from '../lifecycle/lease.js';
import { checkPendingPods } from './pending-pods.js';
import { podUrl, type RunSettings, settingsOfRun } from '../lifecycle/run-settings.js';
import { toLivePod } from '../lifecycle/runpod-views.js';
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
  /** Issue 12 §5: start again a gateway `up` started that has died (`reviveGateway` in services.ts). */
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
  const unknown = seen.kind === 'ok' ? seen.all.filter((p) => isOurPodName(p.name) && !known.has(p.id) && p.status !== 'TERMINATED') : [];
  // Another machine's runpod-llm on the same account: reported, never reaped.
  const install = installId(state.home);
  const foreignPods: LivePod[] = [];
  const otherInstallPods: LivePod[] = [];
  for (const p of unknown) (podInstall(p.env, install) === 'other' ? otherInstallPods : foreignPods).push(toLivePod(p));

  if (live !== 'unreachable') {
    for (const pod of pods) {
      const l = live.get(pod.podId);
      if (l !== undefined && l !== 'not_found') updatePodSeen(state, pod.podId, { status: l.status, costPerHr: l.costPerHr, startedAt: l.startedAt });
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
    otherInstallPods,
    recreations: run === null ? 0 : listPods(state, 1_000).filter((p) => p.runId === run.runId && p.replacesPodId !== null).length,
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
  const ctx = { deps, run, settings, pods: new Map(pods.map((p) => [p.podId, p])), live, now, unreachableError: report.unreachable };
  for (const action of actions) {
    const result = await executeAction(ctx, action);
    if (action.type === 'report_orphan') report.orphans.push({ podId: action.podId, name: action.name, ...(action.otherInstall === true ? { otherInstall: true } : {}) });
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
  if (live !== 'unreachable' && run !== null && activeRun(state)?.runId === run.runId && listActivePods(state, run.runId).length === 0) {
    endRun(state, run.runId, 'no_pod', now);
    appendAudit(state, { action: 'end_run', reason: 'no_pod', at: now, details: { runId: run.runId } });
    report.actions.push({ action: { type: 'end_run_without_pod', runId: run.runId }, ok: true, note: 'run ended: it has no pod left' });
  }
  // Last, on the state as this pass left it: a run ended just now for its limit is not woken.
  if (live !== 'unreachable') {
    const woke = await handleWake(deps, { fallback: options.fallback, config });
    if (woke.result !== null) report.actions.push(woke.result);
    report.pending += woke.starting;
  }
  const revived = await options.reviveGateway?.();
  if (revived != null) {
    report.actions.push({ action: { type: 'restart_gateway', port: revived.port }, ok: revived.kind === 'restarted', note: revived.note });
  }
  // The manager is here: renew the guards' leases (even when RunPod's API is unreachable).
  if (settings.guarded && settings.podLeaseMs !== null) await renewLeases(deps, { podUrlTemplate: settings.podUrlTemplate });
  prunePodWatch(state);
  report.activePods = listActivePods(state).length;
  report.runActive = activeRun(state) !== undefined;
  if (!report.runActive && options.wakeOnRequest === true) {
    const last = lastRun(state) ?? null;
    report.wakeable = canWake(last, last === null ? 0 : spendForRun(state, last.runId), clock.now());
  }
  return report;
}

type DecideLive = Map<string, LivePod | 'not_found'>;
type Seen = { kind: 'ok'; live: DecideLive; all: Pod[] } | { kind: 'unreachable'; error: string };

/** A pod created this recently may be missing from a list that lags behind the create. */
const LIST_LAG_MS = 2 * 60_000;
/** One health check of a routed pod per pass; a hung proxy must not stall the pass. */
const HEALTH_TIMEOUT_MS = 10_000;

/**
 * RunPod's view of our pods: one list call per pass (RunPod's quotas are per user, CONTRACT.md),
 * no get per pod. A pod missing from the list counts as gone only once it is older than
 * {@link LIST_LAG_MS}; one the list shows but this tool cannot read (an unknown status value) is
 * "no information": nothing is done to it. Routed RUNNING pods get one `/health` check, and
 * every pod's uptime, health and GPU count are folded into what the watchdog remembers between
 * passes ({@link observePod}): a restart (uptime went backwards), consecutive failed checks,
 * zero GPUs on two polls. Any RunPod failure (network, 5xx, rate limit, bad key) means
 * "unreachable": act on nothing.
 */
async function readLive(deps: ManagerDeps, pods: PodRow[], settings: RunSettings): Promise<Seen> {
  let all: PodList;
  try {
    all = await deps.api.listPods();
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    deps.logger.warn({ err: error }, 'RunPod unreachable: doing nothing this pass');
    return { kind: 'unreachable', error };
  }
  const now = deps.clock.now();
  const byId = new Map(all.map((p) => [p.id, p]));
  const unreadable = new Set((all.skipped ?? []).flatMap((p) => (p.id === undefined ? [] : [p.id])));
  const live: DecideLive = new Map();
  for (const pod of pods) {
    const found = byId.get(pod.podId);
    if (found === undefined) {
      if (unreadable.has(pod.podId)) deps.logger.warn({ podId: pod.podId }, 'RunPod lists this pod with values this tool cannot read: leaving it alone this pass');
      else if (now - Math.max(pod.createdAt, pod.startingSince ?? 0) >= LIST_LAG_MS) live.set(pod.podId, 'not_found');
      continue;
    }
    const l = toLivePod(found);
    const routed = pod.readyAt !== null && pod.desired === 'running' && found.status === 'RUNNING';
    const healthOk = routed ? await healthy(deps, podUrl(settings.podUrlTemplate, pod.podId)) : null;
    const observed = observePod(
      getPodWatch(deps.state, pod.podId),
      { status: found.status, uptimeS: found.runtime?.uptime ?? null, gpuCount: l.gpuCount, healthOk },
      now,
    );
    setPodWatch(deps.state, { podId: pod.podId, ...observed.memory });
    l.restarted = observed.restarted;
    l.healthFails = observed.healthFails;
    l.zeroGpuPolls = observed.zeroGpuPolls;
    live.set(pod.podId, l);
  }
  return { kind: 'ok', live, all };
}

/** `GET /health` through the pod URL (the guard passes it): 200 is healthy, anything else not. */
async function healthy(deps: ManagerDeps, url: string): Promise<boolean> {
  const timeout = AbortSignal.timeout(HEALTH_TIMEOUT_MS);
  try {
    const res = await deps.fetch(`${url}/health`, { signal: deps.signal === undefined ? timeout : AbortSignal.any([timeout, deps.signal]), redirect: 'manual' });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}
