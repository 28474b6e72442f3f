import type { StateDb } from './db.js';

/**
 * What the watchdog remembers of a pod between passes: the last `runtime.uptime` it
 * saw and when (a smaller value later means RunPod restarted the container), consecutive failed
 * health checks, consecutive polls with zero GPUs. Bounded: rows of ended pods are pruned.
 */
export interface PodWatch {
  podId: string;
  uptimeS: number | null;
  uptimeAt: number | null;
  healthFails: number;
  zeroGpuPolls: number;
}

interface PodWatchDbRow {
  pod_id: string;
  uptime_s: number | null;
  uptime_at: number | null;
  health_fails: number;
  zero_gpu_polls: number;
}

export function getPodWatch(db: StateDb, podId: string): PodWatch {
  const r = db.stmt('SELECT * FROM pod_watch WHERE pod_id = ?').get(podId) as PodWatchDbRow | undefined;
  if (r === undefined) return { podId, uptimeS: null, uptimeAt: null, healthFails: 0, zeroGpuPolls: 0 };
  return {
    podId: r.pod_id,
    uptimeS: r.uptime_s,
    uptimeAt: r.uptime_at,
    healthFails: r.health_fails,
    zeroGpuPolls: r.zero_gpu_polls,
  };
}

export function setPodWatch(db: StateDb, watch: PodWatch): void {
  db.stmt(
    `INSERT INTO pod_watch (pod_id, uptime_s, uptime_at, health_fails, zero_gpu_polls)
     VALUES (@podId, @uptimeS, @uptimeAt, @healthFails, @zeroGpuPolls)
     ON CONFLICT (pod_id) DO UPDATE SET uptime_s = @uptimeS, uptime_at = @uptimeAt,
       health_fails = @healthFails, zero_gpu_polls = @zeroGpuPolls`,
  ).run(watch);
}

/** Forgets pods that have ended. */
export function prunePodWatch(db: StateDb): void {
  db.stmt('DELETE FROM pod_watch WHERE pod_id NOT IN (SELECT pod_id FROM pods WHERE ended_at IS NULL)').run();
}
