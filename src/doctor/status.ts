import type { RunPodApi } from '../runpod/client.js';
import { isRunPodError } from '../runpod/errors.js';
import type { Clock } from '../shared/clock.js';
import { listAudit } from '../state/audit.js';
import { lastSelfStop, type SelfStopVerdict } from '../lifecycle/lease.js';
import type { StateDb } from '../state/db.js';
import { listActivePods, listPods } from '../state/pods.js';
import { listRoutes } from '../state/routes.js';
import { activeRun, getRun } from '../state/runs.js';
import { spendSummary } from '../state/spend.js';
import { readUsage } from '../state/usage.js';
import { pendingWake } from '../state/wake-requests.js';
import { pendingCost } from '../lifecycle/accrual.js';
import { readDaemon } from '../daemons/detached-process.js';
import { type RunSettings, settingsOfRun } from '../lifecycle/run-settings.js';
import { readGatewayUrl } from '../daemons/gateway-daemon.js';

/** `status`: what runs, what it costs, how long it has left. Plain data: `--json` prints it as is. */
export interface StatusData {
  at: string;
  home: string;
  run: null | {
    runId: string;
    startedAt: string;
    model: string;
    runtimeLimitMs: number | null;
    /** Until the watchdog terminates the run (null: no limit). */
    runtimeLeftMs: number | null;
    budgetUsd: number | null;
    budgetLeftUsd: number | null;
    idleLimitMs: number | null;
    idleAction: 'stop' | 'terminate';
    /** Pods the run keeps ready. */
    replicas: number;
  };
  /** The last run, when none is active: how it ended. */
  lastRun: null | { runId: string; endedAt: string | null; endReason: string | null };
  pods: Array<{
    podId: string;
    name: string;
    /** From RunPod now, or the last status seen when RunPod was not asked. */
    status: string;
    desired: string;
    gpu: { id: string; count: number };
    cloud: string;
    costPerHr: number;
    uptimeMs: number | null;
    ready: boolean;
    restarts: number;
    /** Guard version in front of its vLLM; null: unguarded (vLLM's open routes are public). */
    guard: string | null;
    /** Whether the pod can stop itself, as its guard last said (lease.ts); null: not known. */
    selfStop: SelfStopVerdict | null;
  }>;
  /** A gateway asked for a pod (wake on request) and the watchdog has not acted yet. */
  wake: null | { requestedAt: string; requests: number };
  idle: { lastRequestAt: string | null; idleMs: number | null };
  usage: { requests: number; tokensIn: number; tokensOut: number };
  /** USD, including cost not yet booked by the watchdog. */
  spend: { run: number; today: number; month: number };
  gateway: { url: string | null; pid: number | null; running: boolean; health: string | null };
  watchdog: { pid: number | null; running: boolean };
  /** `live`, `not_asked` (no RUNPOD_API_KEY) or the reason RunPod could not be asked. */
  runpod: string;
  recent: Array<{ at: string; action: string; reason: string | null; podId: string | null }>;
}

export interface StatusDeps {
  state: StateDb;
  /** Absent without RUNPOD_API_KEY: the state alone answers. */
  api?: Pick<RunPodApi, 'listPods'>;
  clock: Clock;
  fetch: typeof globalThis.fetch;
  fallback: RunSettings;
}

export async function statusData(deps: StatusDeps): Promise<StatusData> {
  const { state } = deps;
  const now = deps.clock.now();
  const run = activeRun(state) ?? null;
  const pods = listActivePods(state);
  const settings = run === null ? deps.fallback : settingsOfRun(run.config, deps.fallback);

  let runpod = 'not_asked';
  const live = new Map<string, { status: string; cost: number }>();
  if (deps.api !== undefined) {
    try {
      const listed = await deps.api.listPods();
      for (const p of listed) live.set(p.id, { status: p.status, cost: p.cost });
      // Listed with values this tool cannot read: still there (never shown as terminated).
      for (const p of listed.skipped ?? [])
        if (p.id !== undefined) live.set(p.id, { status: `UNREADABLE (${p.reason})`, cost: Number.NaN });
      runpod = 'live';
    } catch (err) {
      runpod = isRunPodError(err) ? `${err.code}: ${err.message}` : String(err);
    }
  }
  const ready = new Set(
    listRoutes(state)
      .filter((r) => r.ready)
      .map((r) => r.podId),
  );
  const podViews = pods.map((p) => {
    const l = live.get(p.podId);
    const status = runpod === 'live' ? (l?.status ?? 'TERMINATED') : p.status;
    return {
      podId: p.podId,
      name: p.name,
      status,
      desired: p.desired,
      gpu: { id: p.gpuTypeId, count: p.gpuCount },
      cloud: p.cloud,
      costPerHr: l === undefined || Number.isNaN(l.cost) ? (status === 'EXITED' ? 0 : p.costPerHr) : l.cost,
      uptimeMs: p.startedAt === null || status !== 'RUNNING' ? null : Math.max(0, now - p.startedAt),
      ready: ready.has(p.podId),
      restarts: p.restarts,
      guard: p.guard,
      selfStop: p.guard === null ? null : lastSelfStop({ state }, p.podId),
    };
  });
  const pending = pods.reduce((sum, p, i) => sum + pendingCost(p, now, podViews[i]?.costPerHr ?? 0), 0);
  const booked = spendSummary(state, run?.runId ?? null, now);
  const spend = {
    run: booked.run + (run === null ? 0 : pending),
    today: booked.day + pending,
    month: booked.month + pending,
  };

  const usage = readUsage(state).total;
  const readyTimes = pods.flatMap((p) => (p.readyAt === null || p.desired !== 'running' ? [] : [p.readyAt]));
  const idleSince =
    readyTimes.length === 0 ? null : Math.max(usage.lastRequestAt ?? -Infinity, Math.min(...readyTimes));

  const last = run === null ? listPods(state, 1)[0] : undefined;
  const lastRun = last?.runId === null || last === undefined ? undefined : getRun(state, last.runId);

  const wake = pendingWake(state);
  const gatewayPid = readDaemon(state.home, 'gateway');
  const gatewayUrl = readGatewayUrl(state.home) ?? null;
  const watchdogPid = readDaemon(state.home, 'watchdog');
  return {
    at: new Date(now).toISOString(),
    home: state.home,
    run:
      run === null
        ? null
        : {
            runId: run.runId,
            startedAt: new Date(run.startedAt).toISOString(),
            model: settings.servedModelName,
            runtimeLimitMs: run.runtimeLimitMs,
            runtimeLeftMs:
              run.runtimeLimitMs === null ? null : Math.max(0, run.startedAt + run.runtimeLimitMs - now),
            budgetUsd: run.budgetUsd,
            budgetLeftUsd: run.budgetUsd === null ? null : Math.max(0, run.budgetUsd - spend.run),
            idleLimitMs: settings.idleLimitMs,
            idleAction: settings.idleAction,
            replicas: settings.replicas,
          },
    lastRun:
      lastRun === undefined
        ? null
        : {
            runId: lastRun.runId,
            endedAt: lastRun.endedAt === null ? null : new Date(lastRun.endedAt).toISOString(),
            endReason: lastRun.endReason,
          },
    pods: podViews,
    wake:
      wake === null
        ? null
        : { requestedAt: new Date(wake.requestedAt).toISOString(), requests: wake.requests },
    idle: {
      lastRequestAt: usage.lastRequestAt === null ? null : new Date(usage.lastRequestAt).toISOString(),
      idleMs: idleSince === null ? null : Math.max(0, now - idleSince),
    },
    usage: { requests: usage.requests, tokensIn: usage.tokensIn, tokensOut: usage.tokensOut },
    spend,
    gateway: {
      url: gatewayUrl,
      pid: gatewayPid?.pid ?? null,
      running: gatewayPid?.running ?? false,
      health:
        gatewayPid?.running === true && gatewayUrl !== null
          ? await gatewayHealth(deps.fetch, gatewayUrl)
          : null,
    },
    watchdog: { pid: watchdogPid?.pid ?? null, running: watchdogPid?.running ?? false },
    runpod,
    recent: listAudit(state, { limit: 5 }).map((e) => ({
      at: new Date(e.at).toISOString(),
      action: e.action,
      reason: e.reason,
      podId: e.podId,
    })),
  };
}

/** The gateway's own `/health` status (`ok`, `degraded`), or why it did not answer. */
export async function gatewayHealth(fetchFn: typeof globalThis.fetch, baseUrl: string): Promise<string> {
  try {
    const res = await fetchFn(baseUrl.replace(/\/v1$/, '/health'), { signal: AbortSignal.timeout(3_000) });
    if (res.status !== 200) return `HTTP ${res.status}`;
    const body = (await res.json()) as { status?: unknown };
    return typeof body.status === 'string' ? body.status : 'ok';
  } catch {
    return 'unreachable';
  }
}
