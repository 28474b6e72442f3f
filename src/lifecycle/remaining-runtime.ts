import type { RunRow } from '../state/runs.js';

/** The seed's minimum runtime of a pod created late in a run (`manager.min_recreate_runtime`). */
export const DEFAULT_MIN_RECREATE_RUNTIME_MS = 5 * 60_000;

/**
 * Runtime left for a pod created now in this run: the limit minus the time since the run
 * started, but at least `minMs` (the original Python tool's 5 minutes); null when the run has no limit.
 *
 * @example
 *   remainingRuntimeMs({ startedAt: 0, runtimeLimitMs: 3_600_000 }, 3_500_000, 300_000) // 300_000
 */
export function remainingRuntimeMs(
  run: Pick<RunRow, 'startedAt' | 'runtimeLimitMs'>,
  now: number,
  minMs: number = DEFAULT_MIN_RECREATE_RUNTIME_MS,
): number | null {
  if (run.runtimeLimitMs === null) return null;
  return Math.max(run.runtimeLimitMs - (now - run.startedAt), minMs);
}
