/**
 * What the watchdog learns of a pod between passes: RunPod restarts a crashed
 * container in place and the pod stays RUNNING, so a restart shows only as an uptime that went
 * backwards, and a dead vLLM only as failed health checks. Pure; the memory lives in the state
 * table `pod_watch`, and `decide` acts on the signals.
 */
/** What the watchdog keeps of a pod from one pass to the next (state table `pod_watch`). */
export interface PodMemory {
  uptimeS: number | null;
  uptimeAt: number | null;
  healthFails: number;
  zeroGpuPolls: number;
}

/** What one pass saw of a pod: RunPod's status and uptime, and (routed pods) its health check. */
export interface PodObservation {
  status: string;
  /** `runtime.uptime`: seconds since the container started; null when not reported. */
  uptimeS: number | null;
  gpuCount: number;
  /** null: not checked this pass (not routed, not RUNNING). */
  healthOk: boolean | null;
}

/**
 * Pure: folds one observation into a pod's memory and derives the signals `decide` acts on.
 * - `restarted`: RUNNING at both looks and the uptime is well below what it would be had the
 *   container kept running (previous uptime + the time between the looks, less 5 s and 10 %
 *   slack for clocks and rounding): RunPod restarted the process (docs/runpod-contract.md: crashed
 *   containers restart in place and stay RUNNING). Not RUNNING: the memory is cleared, so a pod
 *   stopped and started again on purpose does not count.
 * - `healthFails`: consecutive failed checks; a check that was not made leaves the count.
 * - `zeroGpuPolls`: consecutive RUNNING polls with zero GPUs and a nonzero uptime.
 *
 * @example
 *   observePod({ uptimeS: 300, uptimeAt: 0, healthFails: 0, zeroGpuPolls: 0 },
 *     { status: 'RUNNING', uptimeS: 4, gpuCount: 1, healthOk: false }, 30_000).restarted // true
 */
export function observePod(
  prev: PodMemory,
  seen: PodObservation,
  now: number,
): { memory: PodMemory; restarted: boolean; healthFails: number; zeroGpuPolls: number } {
  const running = seen.status === 'RUNNING';
  let restarted = false;
  if (
    running &&
    seen.uptimeS !== null &&
    prev.uptimeS !== null &&
    prev.uptimeAt !== null &&
    now > prev.uptimeAt
  ) {
    const elapsedS = (now - prev.uptimeAt) / 1000;
    restarted = seen.uptimeS < prev.uptimeS + elapsedS - (5 + 0.1 * elapsedS);
  }
  const healthFails = seen.healthOk === null ? prev.healthFails : seen.healthOk ? 0 : prev.healthFails + 1;
  const zeroGpuPolls = running && seen.gpuCount === 0 && (seen.uptimeS ?? 0) > 0 ? prev.zeroGpuPolls + 1 : 0;
  const memory: PodMemory = {
    uptimeS: running ? seen.uptimeS : null,
    uptimeAt: running && seen.uptimeS !== null ? now : null,
    healthFails: running ? healthFails : 0,
    zeroGpuPolls,
  };
  return { memory, restarted, healthFails: memory.healthFails, zeroGpuPolls };
}
