import { isAppError } from '../shared/errors.js';
import { listActivePods } from '../state/pods.js';
import type { RunRow } from '../state/runs.js';
import type { LivePod } from './decision.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import { StartWatch } from '../lifecycle/fast-failure.js';
import { probeReadiness } from '../lifecycle/readiness.js';
import { podUrl, type RunSettings } from '../lifecycle/run-settings.js';
import { abandonPod, routePod } from '../lifecycle/route-pod.js';
import type { ActionResult } from './report.js';

/**
 * Pods the watchdog created or started (recreate after a death, replicas, wake) are not waited
 * for inside the pass: each
 * pass probes them once. Ready → route written (the gateway picks it up within a second);
 * past the readiness timeout, or failed for good → terminated, as `up` would.
 */
export async function checkPendingPods(
  deps: ManagerDeps,
  input: { run: RunRow; settings: RunSettings; live: Map<string, LivePod | 'not_found'>; kept: Set<string> },
): Promise<{ results: ActionResult[]; waiting: number }> {
  const { state, clock } = deps;
  const results: ActionResult[] = [];
  let waiting = 0;
  const starting = listActivePods(state, input.run.runId).filter(
    (p) => p.desired === 'running' && p.readyAt === null && input.kept.has(p.podId),
  );
  for (const pod of starting) {
    // A pod started again (resume, wake) is timed from that start, not from its creation.
    const since = pod.startingSince ?? pod.createdAt;
    const url = podUrl(input.settings.podUrlTemplate, pod.podId);
    // One probe per pass: the log signs (vLLM's argument error, repeated starts, no start marker) still apply.
    const startWatch = new StartWatch({ expectMarker: pod.guard !== null, since });
    const target = {
      podId: pod.podId,
      podUrl: url,
      apiKey: pod.apiKey,
      model: input.settings.servedModelName,
      renewLease: pod.guard !== null,
      startWatch,
    };
    try {
      const outcome = await probeReadiness(
        { api: deps.api, fetch: deps.fetch, ...(deps.signal === undefined ? {} : { signal: deps.signal }) },
        target,
      );
      if (outcome.ready) {
        routePod(deps, {
          pod,
          url,
          model: input.settings.servedModelName,
          afterMs: clock.now() - since,
          reason: 'readiness',
        });
        results.push({
          action: { type: 'route_ready', podId: pod.podId },
          ok: true,
          note: `${pod.podId} ready, routed`,
        });
        continue;
      }
      if (clock.now() - since >= input.settings.readinessTimeoutMs) {
        await abandonPod(deps, pod, 'readiness_timeout');
        results.push({
          action: { type: 'readiness_failed', podId: pod.podId, reason: 'readiness_timeout' },
          ok: true,
          note: `${pod.podId} not ready in time (${outcome.waitingFor}); terminated`,
        });
        continue;
      }
      waiting++;
    } catch (err) {
      if (!isAppError(err) || err.code !== 'LIFECYCLE_POD_FAILED') throw err;
      await abandonPod(deps, pod, 'pod_failed', err);
      results.push({
        action: { type: 'readiness_failed', podId: pod.podId, reason: 'pod_failed' },
        ok: true,
        note: err.message,
      });
    }
  }
  return { results, waiting };
}
