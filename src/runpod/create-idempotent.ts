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
}

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
 * RunPod can answer a create with a 5xx (or not answer) and still create the pod (CONTRACT.md),
 * so a failed create is never simply repeated: we wait, list the pods, and adopt the one with
 * our (unique) name; only when the list shows none do we create again. If the list itself
 * cannot be read we stop, since creating blind could double the bill.
 *
 * @example
 *   const { pod, adopted } = await createPodIdempotent(deps, { name: 'runpod-llm-3f9a1c', ... });
 */
export async function createPodIdempotent(deps: CreatePodIdempotentDeps, req: CreatePodRequest): Promise<CreatePodOutcome> {
  let lastError: RunPodError | undefined;
  for (let attempt = 0; attempt <= deps.retries; attempt++) {
    try {
      return { pod: await deps.createOnce(req), adopted: false, attempts: attempt + 1 };
    } catch (err) {
      if (!isRunPodError(err, 'RUNPOD_UNAVAILABLE')) throw err;
      lastError = err;
    }
    // Give RunPod a moment: a pod created by a failed call may take a beat to be listed.
    await deps.sleep(deps.backoffMs(attempt));
    let pods: Pod[];
    try {
      pods = await deps.listPods();
    } catch (listError) {
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
    const ours = pods.find((p) => p.name === req.name && p.status !== 'TERMINATED');
    if (ours !== undefined) {
      deps.logger?.warn({ podId: ours.id, name: req.name, attempt }, 'runpod create failed but the pod exists: adopted');
      return { pod: ours, adopted: true, attempts: attempt + 1 };
    }
    deps.logger?.info({ name: req.name, attempt }, 'runpod create failed and no pod was created: retrying');
  }
  throw lastError ?? new RunPodError('RUNPOD_UNAVAILABLE', 'RunPod create failed');
}
