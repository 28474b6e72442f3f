import { isRunPodError } from '../runpod/errors.js';
import { isAppError } from '../shared/errors.js';
import { appendAudit } from '../state/audit.js';
import { markPodEnded, markPodReady, setPodDesired, updatePodSeen, type PodRow } from '../state/pods.js';
import { deleteRoutesForPod, upsertRoute } from '../state/routes.js';
import { accrueTo } from './accrual.js';
import { StartWatch } from './fast-failure.js';
import { cannotStopItself, describeSelfStop, renewPodLease, type SelfStopVerdict } from './lease.js';
import type { ManagerDeps } from './manager-deps.js';
import { type ReadinessProgress, StartFailure, waitForReady } from './readiness.js';
import { podUrl, type RunSettings } from './run-settings.js';

/**
 * The two ends of a pod's start, shared by `up`, `resume` and the watchdog's pending pods: a
 * pod that is ready gets its route ({@link routePod}); one that will not serve is terminated and
 * booked ({@link abandonPod}).
 */
export interface RouteEvents {
  onStep?: (text: string) => void;
  onProgress?: (progress: ReadinessProgress) => void;
}

/**
 * Marks a ready pod ready, writes its route (the gateway picks it up within a second) and
 * audits it with the wait (`afterMs`).
 *
 * @example
 *   routePod(deps, { pod, url, model: settings.servedModelName, afterMs, reason: 'readiness' });
 */
export function routePod(
  deps: Pick<ManagerDeps, 'state' | 'clock'>,
  input: { pod: PodRow; url: string; model: string; afterMs: number; reason: string },
): void {
  const { pod, url } = input;
  markPodReady(deps.state, pod.podId, deps.clock.now());
  upsertRoute(deps.state, {
    routeId: pod.podId,
    podId: pod.podId,
    baseUrl: `${url}/v1`,
    apiKey: pod.apiKey,
    model: input.model,
    ready: true,
  });
  appendAudit(deps.state, {
    action: 'ready',
    reason: input.reason,
    podId: pod.podId,
    details: { afterMs: input.afterMs },
  });
}

/**
 * Waits until the pod is ready (through its guard: `/health`, then `/v1/models` with the key),
 * then routes it. The wait counts from `since` (default: its creation). Returns the wait (ms).
 */
export async function readyAndRoute(
  deps: ManagerDeps,
  settings: RunSettings,
  pod: PodRow,
  events: RouteEvents,
  since: number = pod.createdAt,
  auditReason = 'readiness',
): Promise<number> {
  const { state } = deps;
  const url = podUrl(settings.podUrlTemplate, pod.podId);
  // Fast failure: a fresh guarded pod's start script prints the marker first.
  const startWatch = new StartWatch({ expectMarker: pod.guard !== null && since === pod.createdAt, since });
  const ready = await waitForReady(
    deps,
    {
      podId: pod.podId,
      podUrl: url,
      apiKey: pod.apiKey,
      model: settings.servedModelName,
      renewLease: pod.guard !== null,
      startWatch,
    },
    {
      timeoutMs: settings.readinessTimeoutMs,
      pollMs: settings.readinessPollMs,
      startedAt: since,
      onProgress: (p) => {
        updatePodSeen(state, pod.podId, { status: p.status === 'unknown' ? pod.status : p.status });
        events.onProgress?.(p);
      },
    },
  );
  const startedAt = ready.pod.startedAt === null ? null : Date.parse(ready.pod.startedAt);
  updatePodSeen(state, pod.podId, {
    status: ready.pod.status,
    costPerHr: ready.pod.cost,
    ...(startedAt === null || Number.isNaN(startedAt) ? {} : { startedAt }),
  });
  routePod(deps, {
    pod,
    url,
    model: settings.servedModelName,
    afterMs: ready.elapsedMs,
    reason: auditReason,
  });
  if (pod.guard !== null) {
    // The pod-scoped key may not stop the pod: the guard checked its pod key at start; say now if the pod cannot stop itself.
    const renewal = await renewPodLease(deps, pod, url);
    if (cannotStopItself(renewal.selfStop))
      events.onStep?.(`warning: pod ${pod.podId}: ${describeSelfStop(renewal.selfStop as SelfStopVerdict)}`);
  }
  return ready.elapsedMs;
}

export function failureReason(err: unknown): string {
  if (isAppError(err) && err.code === 'LIFECYCLE_READINESS_TIMEOUT') return 'readiness_timeout';
  if (isAppError(err) && err.code === 'LIFECYCLE_INTERRUPTED') return 'interrupted';
  return 'pod_failed';
}

/**
 * Terminates a pod that will not serve, books what it cost, and records why. If RunPod cannot
 * be reached the state keeps wanting it terminated, so the next `watch` (or `down`) retries.
 */
export async function abandonPod(
  deps: ManagerDeps,
  pod: PodRow,
  reason: string,
  cause?: unknown,
): Promise<void> {
  const { state } = deps;
  if (cause instanceof StartFailure) {
    // Why it will never be ready, with the pod's own last words, for `status` and later reading.
    appendAudit(state, {
      action: 'start_failed',
      reason: cause.sign.kind,
      podId: pod.podId,
      details: { cause: cause.sign.cause, lastLines: cause.sign.lastLines },
    });
  }
  setPodDesired(state, pod.podId, 'terminated', reason);
  deleteRoutesForPod(state, pod.podId);
  try {
    await deps.api.deletePod(pod.podId);
  } catch (err) {
    if (!isRunPodError(err, 'RUNPOD_NOT_FOUND')) {
      appendAudit(state, {
        action: 'terminate_failed',
        reason,
        podId: pod.podId,
        details: { error: (err as Error).message },
      });
      deps.logger.error(
        { podId: pod.podId, err: (err as Error).message },
        'could not terminate the pod; `runpod-llm watch` or `down` will retry',
      );
      return;
    }
  }
  accrueTo(state, pod, deps.clock.now(), pod.costPerHr);
  markPodEnded(state, pod.podId, reason, deps.clock.now());
  appendAudit(state, { action: 'terminate', reason, podId: pod.podId });
}
