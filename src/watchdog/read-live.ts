import type { PodList } from '../runpod/client.js';
import type { Pod } from '../runpod/schemas.js';
import type { PodRow } from '../state/pods.js';
import { getPodWatch, setPodWatch } from '../state/pod-watch.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import { podUrl, type RunSettings } from '../lifecycle/run-settings.js';
import type { LivePod } from './decision.js';
import { observePod } from './pod-observation.js';

/** RunPod's view of our pods for one pass, as `decide` reads it. */

/**
 * What `decide` needs of a pod. GPUs are counted from the runtime while RUNNING (a restarted pod
 * can come back with none, docs/runpod-contract.md); before that the requested count stands.
 */
export function toLivePod(pod: Pod): LivePod {
  const running = pod.status === 'RUNNING' && pod.runtime !== null;
  const gpuCount = running ? (pod.runtime?.gpus?.length ?? pod.gpu?.count ?? 0) : (pod.gpu?.count ?? 0);
  const started = pod.startedAt === null ? null : Date.parse(pod.startedAt);
  return {
    id: pod.id,
    name: pod.name,
    status: pod.status,
    costPerHr: pod.cost,
    gpuCount,
    startedAt: started === null || Number.isNaN(started) ? null : started,
  };
}

export type DecideLive = Map<string, LivePod | 'not_found'>;
export type Seen = { kind: 'ok'; live: DecideLive; all: Pod[] } | { kind: 'unreachable'; error: string };

/** A pod created this recently may be missing from a list that lags behind the create. */
const LIST_LAG_MS = 2 * 60_000;
/** One health check of a routed pod per pass; a hung proxy must not stall the pass. */
const HEALTH_TIMEOUT_MS = 10_000;

/**
 * RunPod's view of our pods: one list call per pass (RunPod's quotas are per user, docs/runpod-contract.md),
 * no get per pod. A pod missing from the list counts as gone only once it is older than
 * {@link LIST_LAG_MS}; one the list shows but this tool cannot read (an unknown status value) is
 * "no information": nothing is done to it. Routed RUNNING pods get one `/health` check, and
 * every pod's uptime, health and GPU count are folded into what the watchdog remembers between
 * passes ({@link observePod}): a restart (uptime went backwards), consecutive failed checks,
 * zero GPUs on two polls. Any RunPod failure (network, 5xx, rate limit, bad key) means
 * "unreachable": act on nothing.
 */
export async function readLive(deps: ManagerDeps, pods: PodRow[], settings: RunSettings): Promise<Seen> {
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
      if (unreadable.has(pod.podId))
        deps.logger.warn(
          { podId: pod.podId },
          'RunPod lists this pod with values this tool cannot read: leaving it alone this pass',
        );
      else if (now - Math.max(pod.createdAt, pod.startingSince ?? 0) >= LIST_LAG_MS)
        live.set(pod.podId, 'not_found');
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
    const res = await deps.fetch(`${url}/health`, {
      signal: deps.signal === undefined ? timeout : AbortSignal.any([timeout, deps.signal]),
      redirect: 'manual',
    });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}
