import type { Clock } from '../shared/clock.js';
import type { StateDb } from '../state/db.js';
import { listActivePods } from '../state/pods.js';
import { activeRun } from '../state/runs.js';
import { spendForRun } from '../state/spend.js';
import { readUsage } from '../state/usage.js';

/** What the dashboard shows of the pod the manager runs; null when there is none. */
export interface PodView {
  pod_id: string;
  status: string;
  model: string;
  gpu: string;
  replicas: number;
  cost_per_hr: number;
  cost_so_far_usd: number;
  /** Until the run's runtime limit; null when the run has none. */
  time_left_s: number | null;
  /** Minutes since the last forwarded request (or since the pod became ready). */
  idle_min: number | null;
}

/**
 * Reads the manager's state (read-only use of the gateway's handle) for the dashboard. Errors
 * become null: the dashboard must not fail because the manager is mid-migration.
 */
export function statePodInfo(db: () => StateDb | undefined, clock: Clock): () => PodView | null {
  return () => {
    const state = db();
    if (state === undefined) return null;
    try {
      const run = activeRun(state);
      if (run === undefined) return null;
      const pods = listActivePods(state, run.runId);
      const pod = pods[0];
      if (pod === undefined) return null;
      const now = clock.now();
      const last = readUsage(state).total.lastRequestAt ?? pod.readyAt;
      return {
        pod_id: pod.podId,
        status: pod.status,
        model: pod.model,
        gpu: `${pod.gpuCount}× ${pod.gpuTypeId}`,
        replicas: pods.length,
        cost_per_hr: pods.reduce((sum, p) => sum + p.costPerHr, 0),
        cost_so_far_usd: Math.round(spendForRun(state, run.runId) * 100) / 100,
        time_left_s:
          run.runtimeLimitMs === null
            ? null
            : Math.max(0, Math.round((run.startedAt + run.runtimeLimitMs - now) / 1000)),
        idle_min: last === null ? null : Math.floor((now - last) / 60_000),
      };
    } catch {
      return null;
    }
  };
}
