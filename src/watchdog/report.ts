import type { Action } from './decision.js';
import type { WakeRefusal } from './wake-decision.js';

/**
 * What a watchdog pass reports (types only): the pass, its action executor, the pending-pod
 * check and the wake handler all write into it, and none of them imports another for it.
 */

/** Steps the watchdog takes for pods still starting, beside `decide`'s actions. */
export type PendingAction =
  | { type: 'route_ready'; podId: string }
  | { type: 'readiness_failed'; podId: string; reason: string }
  | { type: 'end_run_without_pod'; runId: string }
  /** A gateway's wake request started the run's stopped pods or created new ones. */
  | { type: 'wake'; how: 'start' | 'create'; podIds: string[] }
  | { type: 'wake_refused'; reason: WakeRefusal }
  /** The gateway `up` started had died: started again on its port. */
  | { type: 'restart_gateway'; port: number };

export interface ActionResult {
  action: Action | PendingAction;
  ok: boolean;
  /** What happened, in words (`created pod x`, the error message). */
  note?: string;
}

export interface WatchReport {
  at: number;
  runId: string | null;
  /** Everything `decide` returned, except bookkeeping (`keep`, `accrue`), and what came of it. */
  actions: ActionResult[];
  /** RunPod could not be asked: nothing destructive was done. */
  unreachable: string | null;
  orphans: Array<{ podId: string; name: string; otherInstall?: boolean }>;
  /** Pods still on their way to ready. */
  pending: number;
  /** Active pods and whether a run is still going: when both are gone the loop may end. */
  activePods: number;
  runActive: boolean;
  /** No run is active, but the last one was parked by idleness and a request may wake it. */
  wakeable: boolean;
}
