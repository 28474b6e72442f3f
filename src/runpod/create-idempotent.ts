import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { isRunPodError, RunPodError } from './errors.js';
import type { Sleep } from './http.js';
import type { CreatePodRequest, Pod } from './schemas.js';

export interface CreatePodIdempotentDeps {
  /** One create attempt (it may retry 429s, which are never applied, but never a 5xx). */
  createOnce(req: CreatePodRequest): Promise<Pod>;
  listPods(): Promise<Pod[]>;
  sleep: Sleep;
  /** Delay before retry `attempt` (0-based). */
  backoffMs(attempt: number): number;
  /** Creates after the first one. */
  retries: number;
  logger?: Logger;
  clock?: Clock;
  /**
   * After an uncertain failure (timeout, 5xx), list by name for this long before any new create
   * (default 45 s, at least 30 s): a create can take tens of seconds to show up (docs/runpod-contract.md).
   */
  confirmWindowMs?: number;
  /** Pause between those lists (default 5 s). */
  confirmPollMs?: number;
}

/** The shortest window a failed create is watched for before creating again (docs/runpod-contract.md). */
export const MIN_CONFIRM_WINDOW_MS = 30_000;

export interface CreatePodOutcome {
  pod: Pod;
  /** True when the pod was found by name after a failed create (RunPod created it anyway). */
  adopted: boolean;
  /** Create calls made. */
  attempts: number;
}

/**
 * Creates a pod without ever creating two.
 *
 * RunPod can answer a create with a 5xx (or not answer) and still create the pod (docs/runpod-contract.md),
 * so a failed create is never simply repeated: we wait, list the pods, and adopt the one with
 * our (unique) name; only when the list shows none do we create again. If the list itself
 * cannot be read we stop, since creating blind could double the bill.
 *
 * @example
 *   const { pod, adopted } = await createPodIdempotent(deps, { name: 'runpod-llm-3f9a1c', ... });
 */
export async function createPodIdempotent(
  deps: CreatePodIdempotentDeps,
  req: CreatePodRequest,
): Promise<CreatePodOutcome> {
  const windowMs = Math.max(MIN_CONFIRM_WINDOW_MS, deps.confirmWindowMs ?? 45_000);
  const pollMs = Math.max(1, deps.confirmPollMs ?? 5_000);
  // Counted in polls as well as clock time, so an injected clock that stands still cannot loop.
  const polls = Math.ceil(windowMs / pollMs) + 1; // the first list comes early, after a short pause
  let lastError: RunPodError | undefined;
  for (let attempt = 0; attempt <= deps.retries; attempt++) {
    try {
      return { pod: await deps.createOnce(req), adopted: false, attempts: attempt + 1 };
    } catch (err) {
      if (!isRunPodError(err, 'RUNPOD_UNAVAILABLE')) throw err;
      lastError = err;
    }
    // The create may still be under way on RunPod's side: watch the list for our (unique) name
    // over the whole window before anything else.
    const started = deps.clock?.now();
    let listed = false;
    let listError: unknown;
    for (let poll = 0; poll < polls; poll++) {
      await deps.sleep(poll === 0 ? Math.min(pollMs, deps.backoffMs(attempt)) : pollMs);
      let pods: Pod[];
      try {
        pods = await deps.listPods();
      } catch (err) {
        listError = err;
        continue;
      }
      listed = true;
      const ours = pods.find((p) => p.name === req.name && p.status !== 'TERMINATED');
      if (ours !== undefined) {
        deps.logger?.warn(
          { podId: ours.id, name: req.name, attempt, poll },
          'runpod create failed but the pod exists: adopted',
        );
        return { pod: ours, adopted: true, attempts: attempt + 1 };
      }
      if (started !== undefined && deps.clock !== undefined && deps.clock.now() - started >= windowMs) break;
    }
    if (!listed) {
      throw new RunPodError(
        'RUNPOD_UNAVAILABLE',
        `RunPod create failed (${lastError.message}) and the pod list could not be read to check whether pod "${req.name}" was created anyway`,
        {
          ...(lastError.upstreamStatus === undefined ? {} : { upstreamStatus: lastError.upstreamStatus }),
          operation: 'POST /v2/pods',
          hint: `Run \`runpod-llm status\` (or look in the RunPod console) for a pod named "${req.name}" before trying again.`,
          cause: listError,
        },
      );
    }
    deps.logger?.info(
      { name: req.name, attempt, windowMs },
      'runpod create failed and no pod appeared within the window: creating again',
    );
  }
  throw lastError ?? new RunPodError('RUNPOD_UNAVAILABLE', 'RunPod create failed');
}
