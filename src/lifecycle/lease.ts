import { appendAudit, listAudit } from '../state/audit.js';
import { listActivePods, type PodRow } from '../state/pods.js';
import type { ManagerDeps } from './manager-deps.js';
import { podUrl } from './run-settings.js';

/*
 * The manager's side of the guard's self-stop (src/guard/guard.py): every watchdog pass tells
 * each ready guarded pod "still here" (`POST /runpod-llm/lease` with the pod key). A pod that
 * hears nothing — no pass and no request — for `manager.pod_lease` stops itself, so a laptop
 * closed with the watchdog on it cannot leave a GPU billing.
 *
 * The answer: guard v2 says 204 and nothing more; guard v3 says 200 with
 * `{"guard":"3","lease_seconds":N|null,"stop_at":T|null,"self_stop":"…"}`, where `self_stop` is
 * what the guard found when it tested its pod key against RunPod's API at start (read-only):
 * `ok`, `refused` (the key is not accepted for the pod), `blocked` (Cloudflare stopped the
 * request before the API), `unreachable`, `missing` (no pod key in the pod env) or `checking`.
 * Both are accepted. A verdict that changes is audited (`pod_self_stop_check`), which is how
 * `status` can say "this pod cannot stop itself" instead of the user finding out from a bill.
 */

/** The guard's lease route on the pod. */
export const LEASE_PATH = '/runpod-llm/lease';
export const SELF_STOP_AUDIT = 'pod_self_stop_check';

export const SELF_STOP_VERDICTS = ['checking', 'ok', 'refused', 'blocked', 'unreachable', 'missing'] as const;
export type SelfStopVerdict = (typeof SELF_STOP_VERDICTS)[number];

export interface LeaseAnswer {
  renewed: boolean;
  /** The guard's version, when it said (v3 and later). */
  guard?: string;
  /** Whether the pod can stop itself, when the guard said (v3 and later). */
  selfStop?: SelfStopVerdict;
}

/**
 * Reads a lease answer of any guard version: 204 (v2) or 200 with JSON (v3). Anything else,
 * including a 200 that is not the guard's JSON, is not a renewal. Unknown values are left out.
 *
 * @example
 *   parseLeaseAnswer(200, '{"guard":"3","self_stop":"refused"}') // { renewed: true, guard: '3', selfStop: 'refused' }
 */
export function parseLeaseAnswer(status: number, body: string): LeaseAnswer {
  if (status === 204) return { renewed: true };
  if (status !== 200) return { renewed: false };
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { renewed: false };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { renewed: false };
  const { guard, self_stop: selfStop } = value as Record<string, unknown>;
  return {
    renewed: true,
    ...(typeof guard === 'string' && /^[\w.-]{1,20}$/.test(guard) ? { guard } : {}),
    ...((SELF_STOP_VERDICTS as readonly unknown[]).includes(selfStop)
      ? { selfStop: selfStop as SelfStopVerdict }
      : {}),
  };
}

/** True for the verdicts that mean the lease and the stop time cannot be enforced on the pod. */
export function cannotStopItself(verdict: SelfStopVerdict | undefined | null): boolean {
  return verdict === 'refused' || verdict === 'blocked' || verdict === 'missing';
}

/** One line for `status` and the log: what the verdict means and what to do. */
export function describeSelfStop(verdict: SelfStopVerdict): string {
  switch (verdict) {
    case 'ok':
      return 'the pod can stop itself (its key was accepted)';
    case 'refused':
      return 'this pod cannot stop itself: RunPod refused its pod-scoped key, so the lease and the stop time are not enforced on the pod; keep the watchdog running (or set a runtime limit RunPod enforces)';
    case 'blocked':
      return "this pod cannot stop itself: its call to RunPod's API was blocked before the API (Cloudflare); keep the watchdog running";
    case 'missing':
      return 'this pod cannot stop itself: RunPod put no pod id or pod key in its environment; keep the watchdog running';
    case 'unreachable':
      return "the pod could not reach RunPod's API to check its key yet (it retries every minute)";
    case 'checking':
      return 'the pod is still checking its key';
  }
}

export interface LeaseRenewal {
  podId: string;
  /** The HTTP status (204 or 200 when renewed), or an error name: not renewed (logged). */
  outcome: number | string;
  renewed: boolean;
  /** Guard v3 and later: whether the pod can stop itself. */
  selfStop?: SelfStopVerdict;
}

/** The pods whose guard expects renewals: wanted running, ready once, guarded, not seen stopped. */
export function leasedPods(pods: readonly PodRow[]): PodRow[] {
  return pods.filter(
    (p) =>
      p.desired === 'running' &&
      p.readyAt !== null &&
      p.guard !== null &&
      p.status !== 'EXITED' &&
      p.status !== 'TERMINATED',
  );
}

/** The self-stop verdict last audited for a pod (null: none recorded, e.g. a v2 guard). */
export function lastSelfStop(deps: Pick<ManagerDeps, 'state'>, podId: string): SelfStopVerdict | null {
  const event = listAudit(deps.state, { podId, limit: 200 }).find((e) => e.action === SELF_STOP_AUDIT);
  const verdict = event?.details?.verdict;
  return (SELF_STOP_VERDICTS as readonly unknown[]).includes(verdict) ? (verdict as SelfStopVerdict) : null;
}

/**
 * Renews the lease of every leased pod, in parallel, each within `timeoutMs`. Failures are
 * logged (never the key) and otherwise ignored: the next pass tries again, and a lease is many
 * passes long. A self-stop verdict that differs from the last one audited for the pod is audited.
 *
 * @example
 *   await renewLeases(deps, { podUrlTemplate: settings.podUrlTemplate });
 */
export async function renewLeases(
  deps: ManagerDeps,
  options: { podUrlTemplate: string; timeoutMs?: number },
): Promise<LeaseRenewal[]> {
  const pods = leasedPods(listActivePods(deps.state));
  return Promise.all(
    pods.map((pod) => renewPodLease(deps, pod, podUrl(options.podUrlTemplate, pod.podId), options.timeoutMs)),
  );
}

/**
 * Renews one pod's lease (its URL without `/v1`) and audits a self-stop verdict that differs
 * from the last one audited for the pod. `up` calls it once a pod is ready, so "this pod cannot
 * stop itself" is said at once rather than found on a bill.
 */
export async function renewPodLease(
  deps: ManagerDeps,
  pod: PodRow,
  url: string,
  timeoutMs = 5_000,
): Promise<LeaseRenewal> {
  const renewal = await renewOne(deps.fetch, `${url}${LEASE_PATH}`, pod.apiKey, timeoutMs);
  const result: LeaseRenewal = { podId: pod.podId, ...renewal };
  if (!renewal.renewed)
    deps.logger.warn(
      { podId: pod.podId, outcome: renewal.outcome },
      "could not renew the guard's lease; the next pass tries again",
    );
  const verdict = renewal.selfStop;
  if (verdict !== undefined && verdict !== 'checking' && verdict !== lastSelfStop(deps, pod.podId)) {
    appendAudit(deps.state, {
      action: SELF_STOP_AUDIT,
      reason: describeSelfStop(verdict),
      podId: pod.podId,
      details: { verdict },
    });
    if (cannotStopItself(verdict))
      deps.logger.warn({ podId: pod.podId, selfStop: verdict }, describeSelfStop(verdict));
  }
  return result;
}

async function renewOne(
  fetcher: typeof globalThis.fetch,
  url: string,
  key: string,
  timeoutMs: number,
): Promise<Omit<LeaseRenewal, 'podId'>> {
  try {
    const res = await fetcher(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The guard's answer is a few dozen bytes; anything longer is not the guard's.
    const body = res.status === 200 ? (await res.text()).slice(0, 4096) : (await res.body?.cancel(), '');
    const answer = parseLeaseAnswer(res.status, body);
    return {
      outcome: res.status,
      renewed: answer.renewed,
      ...(answer.selfStop === undefined ? {} : { selfStop: answer.selfStop }),
    };
  } catch (err) {
    const name = (err as Error).name;
    return {
      outcome:
        name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : ((err as { cause?: { code?: string } }).cause?.code ?? name),
      renewed: false,
    };
  }
}
