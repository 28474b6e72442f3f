import { type PodRow, setAccruedUntil } from '../state/pods.js';
import { addSpend } from '../state/spend.js';
import type { StateDb } from '../state/db.js';

const HOUR_MS = 3_600_000;

/**
 * Books a pod's cost from its last accrual (or creation) up to `now` at `costPerHr`. The watchdog
 * accrues through `decide`; this covers the ends it does not see: a pod `up` gives up on, and the
 * last minutes before `down`. Returns the USD booked.
 */
export function accrueTo(
  state: StateDb,
  pod: Pick<PodRow, 'podId' | 'createdAt' | 'accruedUntil'>,
  now: number,
  costPerHr: number,
): number {
  const since = pod.accruedUntil ?? pod.createdAt;
  if (now <= since || !(costPerHr > 0)) return 0;
  const usd = (costPerHr * (now - since)) / HOUR_MS;
  addSpend(state, { podId: pod.podId, at: now, usd });
  setAccruedUntil(state, pod.podId, now);
  return usd;
}

/** Cost not yet booked for a pod (for `status`), at its current rate. */
export function pendingCost(
  pod: Pick<PodRow, 'createdAt' | 'accruedUntil'>,
  now: number,
  costPerHr: number,
): number {
  const since = pod.accruedUntil ?? pod.createdAt;
  return now > since && costPerHr > 0 ? (costPerHr * (now - since)) / HOUR_MS : 0;
}
