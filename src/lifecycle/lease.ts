import { probeStatus } from '../shared/probe.js';
import { listActivePods, type PodRow } from '../state/pods.js';
import type { ManagerDeps } from './manager-deps.js';
import { podUrl } from './run-settings.js';

/**
 * The manager's side of the guard's self-stop (src/guard/guard.py): every watchdog pass tells
 * each ready guarded pod "still here" (`POST /runpod-llm/lease` with the pod key → 204). A pod
 * that hears nothing — no pass and no request — for `manager.pod_lease` stops itself, so a
 * laptop closed with the watchdog on it cannot leave a GPU billing.
 */
export const LEASE_PATH = '/runpod-llm/lease';

export interface LeaseRenewal {
  podId: string;
  /** 204: renewed; another status or an error name: not renewed (logged). */
  outcome: number | string;
}

/** The pods whose guard expects renewals: wanted running, ready once, guarded, not seen stopped. */
export function leasedPods(pods: readonly PodRow[]): PodRow[] {
  return pods.filter((p) => p.desired === 'running' && p.readyAt !== null && p.guard !== null && p.status !== 'EXITED' && p.status !== 'TERMINATED');
}

/**
 * Renews the lease of every leased pod, in parallel, each within `timeoutMs`. Failures are
 * logged (never the key) and otherwise ignored: the next pass tries again, and a lease is many
 * passes long.
 *
 * @example
 *   await renewLeases(deps, { podUrlTemplate: settings.podUrlTemplate });
 */
export async function renewLeases(deps: ManagerDeps, options: { podUrlTemplate: string; timeoutMs?: number }): Promise<LeaseRenewal[]> {
  const pods = leasedPods(listActivePods(deps.state));
  const timeoutMs = options.timeoutMs ?? 5_000;
  return Promise.all(
    pods.map(async (pod): Promise<LeaseRenewal> => {
      const result = await probeStatus(deps.fetch, `${podUrl(options.podUrlTemplate, pod.podId)}${LEASE_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${pod.apiKey}` } }, timeoutMs);
      const outcome = 'status' in result ? result.status : result.error;
      if (outcome !== 204) deps.logger.warn({ podId: pod.podId, outcome }, 'could not renew the guard\'s lease; the next pass tries again');
      return { podId: pod.podId, outcome };
    }),
  );
}
