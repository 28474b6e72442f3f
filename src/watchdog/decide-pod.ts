import type { Action, LivePod, OurPod, RecreateReason, TerminateReason } from './decision.js';

/**
 * Rules 4–8 of {@link decide} for one pod of the active run (see decide.ts for the rules and
 * their reasons): what the pass does to it, and whether it stays part of the group.
 */

export interface PodContext {
  now: number;
  budgetReason: TerminateReason | null;
  idle: boolean;
  idleTerminate: boolean;
  runtimeUsedUp: boolean;
  remainingRuntime: number | null;
  podDeadline: (p: OurPod) => number | null;
  leaseMs: number | null;
  healthFailPasses: number;
  /** Recreations this pass may still order (counts down). */
  recreationsLeft: number;
  recreateLimitHit: boolean;
}

/** One pod's action; `stays`: still part of the group afterwards; `up`: wanted running. */
export interface PodVerdict {
  action: Action;
  stays: boolean;
  up: boolean;
}

export function decidePod(pod: OurPod, l: LivePod | 'not_found' | undefined, ctx: PodContext): PodVerdict {
  const podId = pod.podId;
  const verdict = (action: Action, stays: boolean, up = false): PodVerdict => ({ action, stays, up });
  // Terminate what still exists; only book the end of what RunPod no longer has.
  const end = (gone: boolean, reason: TerminateReason | string): PodVerdict =>
    verdict(
      gone ? { type: 'mark_ended', podId, reason } : { type: 'terminate', podId, reason: reason as TerminateReason },
      false,
    );

  if (l === undefined) {
    // No information: never act blind.
    return verdict({ type: 'keep', podId }, pod.desired !== 'terminated', pod.desired === 'running');
  }
  const gone = isGone(l);
  // Rule 4.
  if (pod.desired === 'terminated') return gone ? end(true, pod.endReason ?? 'gone') : end(false, 'retry');

  // Rules 5, 6 and 7 (terminate): the pod's life is over.
  const deadline = ctx.podDeadline(pod);
  const final: TerminateReason | null =
    deadline !== null && ctx.now >= deadline
      ? 'runtime_limit'
      : (ctx.budgetReason ?? (ctx.idleTerminate ? 'idle' : null));
  if (final !== null) return end(gone, final);

  const status = l === 'not_found' || gone ? 'GONE' : l.status;
  if (pod.desired === 'stopped' || ctx.idle) {
    // Rule 7 (stop), and keeping a parked pod parked.
    const parked = pod.desired === 'stopped';
    if (status === 'GONE') return verdict({ type: 'mark_ended', podId, reason: 'gone' }, false);
    if (status === 'EXITED') {
      return verdict(parked ? { type: 'keep', podId } : { type: 'mark_stopped', podId, reason: 'idle' }, true);
    }
    if (status === 'ERROR') {
      // A broken pod nobody uses: keep a parked one for a later wake, else end it.
      return parked ? verdict({ type: 'keep', podId }, true) : end(false, 'idle');
    }
    return verdict({ type: 'stop', podId, reason: 'idle' }, true);
  }

  // Rule 8a: it stopped itself while the manager was away.
  if (status === 'EXITED' && pod.guard !== null && pod.readyAt !== null && ctx.leaseMs !== null && ctx.now - Math.max(pod.accruedUntil ?? 0, pod.readyAt) >= ctx.leaseMs) {
    return verdict({ type: 'mark_stopped', podId, reason: 'manager_away' }, true);
  }

  // Rule 8: the pod should be running.
  const present = l === 'not_found' ? undefined : l;
  const routed = pod.readyAt !== null && status === 'RUNNING';
  const broken: RecreateReason | null =
    status === 'ERROR'
      ? 'error'
      : status === 'EXITED' || status === 'GONE'
        ? 'died'
        : present !== undefined && present.gpuCount === 0 && (present.zeroGpuPolls ?? 0) >= 2
          ? 'zero_gpus'
          : routed && present?.restarted === true
            ? 'restarted'
            : routed && (present?.healthFails ?? 0) >= ctx.healthFailPasses
              ? 'unhealthy'
              : null;
  if (broken === null) return verdict({ type: 'keep', podId }, true, true);
  // Broken during its post-limit grace (rule 5's minimum): end it, never recreate.
  if (ctx.runtimeUsedUp) return end(gone, 'runtime_limit');
  if (ctx.recreationsLeft <= 0) {
    ctx.recreateLimitHit = true;
    return end(gone, 'recreate_limit');
  }
  ctx.recreationsLeft -= 1;
  return verdict({ type: 'recreate', podId, remainingRuntimeMs: ctx.remainingRuntime, reason: broken }, true, true);
}

export function isGone(l: LivePod | 'not_found'): boolean {
  return l === 'not_found' || l.status === 'TERMINATED';
}
