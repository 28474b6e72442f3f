import type { RunPodApi } from '../runpod/client.js';
import { isRunPodError } from '../runpod/errors.js';
import type { Pod } from '../runpod/schemas.js';
import type { Clock } from '../shared/clock.js';
import { formatDuration } from '../shared/duration.js';
import { AppError } from '../shared/errors.js';
import { interrupted, type Sleep } from '../shared/sleep.js';
import { portMapped } from './runpod-views.js';
import { LEASE_PATH } from './lease.js';
import type { PodLogLine } from '../runpod/logs.js';
import type { FailureSign, StartWatch } from './fast-failure.js';

/*
 * Readiness, as docs/runpod-contract.md and docs/vllm-contract.md define it: a pod reported RUNNING is not ready. In order:
 * RUNNING with the vLLM port mapped → `GET /health` 200 through the pod URL (the proxy answers
 * 502 while the model loads) → `GET /v1/models` with the pod key lists the served model.
 * Only then may the gateway send traffic to it.
 */

/** The readiness steps, in order. */
export type ReadinessStep = 'running' | 'port' | 'health' | 'models' | 'ready';

export interface ReadinessProgress {
  step: ReadinessStep;
  /** RunPod's status of the pod (PROVISIONING, STARTING, RUNNING, …). */
  status: string;
  elapsedMs: number;
  /** What is awaited, in words ("/health through the pod URL (HTTP 502: model loading)"). */
  waitingFor: string;
}

export interface ReadinessTarget {
  podId: string;
  /** Pod URL without `/v1`. */
  podUrl: string;
  apiKey: string;
  /** The served model name `/v1/models` must list. */
  model: string;
  /**
   * Guarded pod: every probe once the port is mapped also renews the guard's lease, so a model
   * that loads for longer than the lease is not stopped by its own guard while we wait.
   */
  renewLease?: boolean;
  /**
   * Fast failure: once RUNNING, each probe also reads the pod's log tail and asks
   * this watch whether the pod shows a sign it will never become ready.
   */
  startWatch?: StartWatch;
}

export interface ProbeDeps {
  api: Pick<RunPodApi, 'getPod' | 'getPodLogs'>;
  fetch: typeof globalThis.fetch;
  /** Per HTTP probe (default 10 s): a hung proxy must not stall the wait. */
  probeTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface ProbeOutcome {
  ready: boolean;
  step: ReadinessStep;
  status: string;
  waitingFor: string;
  pod: Pod | undefined;
}

/**
 * One readiness check. Throws `LIFECYCLE_POD_FAILED` for what waiting cannot fix (the pod died
 * or vanished, vLLM refuses the pod key, it serves another model); anything else is "not yet".
 *
 * @example
 *   const o = await probeReadiness({ api, fetch }, { podId, podUrl, apiKey, model });
 *   if (o.ready) upsertRoute(...);
 */
export async function probeReadiness(deps: ProbeDeps, target: ReadinessTarget): Promise<ProbeOutcome> {
  let pod: Pod;
  try {
    pod = await deps.api.getPod(target.podId);
  } catch (err) {
    if (isRunPodError(err, 'RUNPOD_NOT_FOUND'))
      throw podFailed(target, 'vanished from RunPod while starting');
    if (isRunPodError(err, 'RUNPOD_UNAVAILABLE') || isRunPodError(err, 'RUNPOD_RATE_LIMITED')) {
      return notYet('running', 'unknown', `RunPod to answer (${(err as Error).message})`, undefined);
    }
    throw err;
  }
  const status = pod.status;
  if (status === 'EXITED' || status === 'ERROR' || status === 'TERMINATED') {
    throw podFailed(
      target,
      `went ${status} while starting (image pull, out of memory for the model, or the host failed)`,
    );
  }
  if (status !== 'RUNNING') return notYet('running', status, 'the pod to be RUNNING', pod);
  if (pod.runtime?.gpus !== undefined && pod.runtime.gpus.length === 0 && (pod.gpu?.count ?? 0) > 0) {
    // A (re)started pod whose GPUs went elsewhere: vLLM can never load (docs/runpod-contract.md). Acted on
    // when two polls with a nonzero uptime agree (a single probe has only one look: it waits).
    if ((target.startWatch?.zeroGpuPolls(pod) ?? 0) >= 2)
      throw podFailed(target, 'is RUNNING without its GPUs (capacity moved)');
    return notYet('running', status, 'its GPUs (RunPod shows the pod RUNNING with none)', pod);
  }
  target.startWatch?.zeroGpuPolls(pod);
  if (target.startWatch !== undefined) {
    const sign = target.startWatch.observe(pod, await readLogTail(deps, target));
    if (sign !== undefined) throw new StartFailure(target.podId, sign);
  }
  if (!portMapped(pod)) return notYet('port', status, 'RunPod to map port 8000', pod);
  // Outcome ignored: before the guard listens there is nothing to renew, and /health says why.
  if (target.renewLease === true) await get(deps, `${target.podUrl}${LEASE_PATH}`, target.apiKey, 'POST');

  const health = await get(deps, `${target.podUrl}/health`);
  if (health.status !== 200) {
    const why =
      health.status === 502
        ? 'HTTP 502: vLLM not listening yet, model loading'
        : health.status === 503
          ? 'HTTP 503: engine not healthy'
          : (health.error ?? `HTTP ${health.status}`);
    return notYet('health', status, `/health through the pod URL (${why})`, pod);
  }

  const models = await get(deps, `${target.podUrl}/v1/models`, target.apiKey);
  if (models.status === 401 || models.status === 403)
    throw podFailed(target, `refused its own API key on /v1/models (HTTP ${models.status})`);
  if (models.status !== 200)
    return notYet('models', status, `/v1/models (${models.error ?? `HTTP ${models.status}`})`, pod);
  const ids = listedModels(models.body);
  if (ids === undefined) return notYet('models', status, '/v1/models to answer a model list', pod);
  if (!ids.includes(target.model))
    throw podFailed(target, `serves ${ids.join(', ') || 'no model'}, not ${target.model}`);
  return { ready: true, step: 'ready', status, waitingFor: 'nothing', pod };
}

export interface WaitDeps extends ProbeDeps {
  clock: Clock;
  sleep: Sleep;
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  /** When the wait began (default now): the pod's creation time counts. */
  startedAt?: number;
  onProgress?: (progress: ReadinessProgress) => void;
}

/**
 * Polls {@link probeReadiness} until ready, reporting progress after every check. Throws
 * `LIFECYCLE_READINESS_TIMEOUT` after `timeoutMs`, `LIFECYCLE_POD_FAILED` when waiting is
 * pointless, `LIFECYCLE_INTERRUPTED` on abort. The caller terminates the pod on any of them.
 *
 * @example
 *   await waitForReady({ api, fetch, clock, sleep }, target, { timeoutMs: 20 * 60_000, pollMs: 5_000, onProgress });
 */
export async function waitForReady(
  deps: WaitDeps,
  target: ReadinessTarget,
  options: WaitOptions,
): Promise<{ pod: Pod; elapsedMs: number }> {
  const start = options.startedAt ?? deps.clock.now();
  for (;;) {
    const outcome = await probeReadiness(deps, target);
    const elapsedMs = deps.clock.now() - start;
    options.onProgress?.({
      step: outcome.step,
      status: outcome.status,
      elapsedMs,
      waitingFor: outcome.waitingFor,
    });
    if (outcome.ready && outcome.pod !== undefined) return { pod: outcome.pod, elapsedMs };
    if (elapsedMs >= options.timeoutMs) {
      throw new AppError(
        'LIFECYCLE_READINESS_TIMEOUT',
        `pod ${target.podId} was not ready after ${formatDuration(elapsedMs)} (still waiting for ${outcome.waitingFor}); it was terminated`,
        {
          hint: 'a fresh host can take long to pull the image and load the model: raise manager.readiness_timeout (RUNPOD_LLM_READINESS_TIMEOUT), or try another GPU (--gpu)',
        },
      );
    }
    await deps.sleep(Math.max(1, Math.min(options.pollMs, options.timeoutMs - elapsedMs)), deps.signal);
  }
}

/** The pod will not become ready (a {@link FailureSign}): cause, last log lines, what to do next. */
export class StartFailure extends AppError {
  readonly sign: FailureSign;

  constructor(podId: string, sign: FailureSign) {
    const lines =
      sign.lastLines.length === 0
        ? ''
        : `\nlast log lines:\n${sign.lastLines.map((l) => `  ${l}`).join('\n')}`;
    super(
      'LIFECYCLE_POD_FAILED',
      `pod ${podId} will not become ready: ${sign.cause}; it was terminated${lines}`,
      { hint: sign.fix },
    );
    this.sign = sign;
  }
}

/** Log tail for the fast-failure check: bounded, quick, and never a reason to fail the probe. */
async function readLogTail(deps: ProbeDeps, target: ReadinessTarget): Promise<PodLogLine[] | undefined> {
  if (deps.api.getPodLogs === undefined) return undefined;
  try {
    const lines = await deps.api.getPodLogs(target.podId, { tail: 200, timeLimitMs: 4_000, idleMs: 500 });
    // The pod key never shows in what we print or audit, whatever the pod logged.
    return lines.map((l) => ({ ...l, line: l.line.split(target.apiKey).join('[redacted]') }));
  } catch {
    return undefined; // logs unavailable (older API, 403): the other signs still apply
  }
}

function notYet(step: ReadinessStep, status: string, waitingFor: string, pod: Pod | undefined): ProbeOutcome {
  return { ready: false, step, status, waitingFor, pod };
}

function podFailed(target: ReadinessTarget, what: string): AppError {
  return new AppError('LIFECYCLE_POD_FAILED', `pod ${target.podId} ${what}; it was terminated`, {
    hint: 'check the model id and that it fits the GPU (--min-vram, --gpu), or try again: `runpod-llm up`',
  });
}

interface Answer {
  status: number;
  body: string;
  error?: string;
}

async function get(
  deps: ProbeDeps,
  url: string,
  key?: string,
  method: 'GET' | 'POST' = 'GET',
): Promise<Answer> {
  const timeout = AbortSignal.timeout(deps.probeTimeoutMs ?? 10_000);
  const signal = deps.signal === undefined ? timeout : AbortSignal.any([timeout, deps.signal]);
  try {
    const res = await deps.fetch(url, {
      method,
      headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
      signal,
      redirect: 'manual',
    });
    // Bounded: a probe needs a status and a small model list, never a large body.
    const body = (await res.text()).slice(0, 65_536);
    return { status: res.status, body };
  } catch (err) {
    if (deps.signal?.aborted === true) throw interrupted();
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return {
      status: 0,
      body: '',
      error: timeout.aborted
        ? 'no answer within the probe timeout'
        : `not reachable${cause === undefined ? '' : ` (${cause})`}`,
    };
  }
}

function listedModels(body: string): string[] | undefined {
  try {
    const value = JSON.parse(body) as { data?: unknown };
    if (!Array.isArray(value.data)) return undefined;
    return value.data.flatMap((m) =>
      typeof (m as { id?: unknown }).id === 'string' ? [(m as { id: string }).id] : [],
    );
  } catch {
    return undefined;
  }
}
