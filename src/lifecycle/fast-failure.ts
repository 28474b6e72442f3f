import type { PodLogLine } from '../runpod/logs.js';
import type { Pod } from '../runpod/schemas.js';

/*
 * Fast failure while a pod starts: RunPod restarts a container whose process
 * exits and keeps the pod RUNNING (docs/runpod-contract.md), so a vLLM that cannot start looks like a model
 * that is still loading — for the whole readiness timeout, while the GPU bills. Once the pod is
 * RUNNING, each readiness poll also reads the pod's log (bounded tail, short time limit) and
 * these signs mean it will never become ready:
 * - vLLM's argument parser refused its arguments (`vllm serve: error: unrecognized arguments`),
 *   the tell of a JSON start command that v2 passed as plain arguments to `vllm serve`;
 * - two or more `start container` system lines since the wait began (a crash loop);
 * - `runtime.uptime` smaller than on the previous poll (RunPod restarted the container);
 * - a start script that should print a first marker line ({@link START_MARKER}) has not, though
 *   the container has been up for `markerGraceMs` and its other output is visible.
 * Pure apart from the state it keeps between polls; `up` terminates the pod on the first sign.
 */

/** The first line a guarded start script prints: the start command ran as meant. */
export const START_MARKER = 'runpod-llm: start';

export type FailureKind = 'vllm_arguments' | 'crash_loop' | 'restarted' | 'no_start_marker';

export interface FailureSign {
  kind: FailureKind;
  /** One line: what the sign means. */
  cause: string;
  /** What to do next. */
  fix: string;
  /** The last log lines (at most {@link SHOWN_LINES}), oldest first, for the user. */
  lastLines: string[];
}

export interface StartWatchOptions {
  /** The start command is the guarded JSON form, whose shell prints {@link START_MARKER} first. */
  expectMarker: boolean;
  /** Log lines older than this (epoch ms) belong to an earlier start (resume): ignored. */
  since: number;
  /** How long the container may run without the marker while other output shows (default 90 s). */
  markerGraceMs?: number;
}

const SHOWN_LINES = 12;
const ARGPARSE =
  /(?:^|\s)(?:vllm serve|api_server\.py|vllm): error: (?:unrecognized arguments|argument |the following arguments are required)/;
const START_CONTAINER = /\bstart(?:ing)? container\b/i;

const FIX_ARGS =
  "RunPod passed the start command to the image's `vllm serve` as plain arguments (its v2 API did not honour the JSON start-command form). Run `runpod-llm doctor --live` to record that, then `runpod-llm up` picks a recipe that needs no entrypoint override (or build docker/vllm-noentry and pass --image); `--unguarded` also works, without the guard";

export class StartWatch {
  readonly #options: Required<StartWatchOptions>;
  #lastUptime: number | undefined;
  #zeroGpuPolls = 0;

  /**
   * Counts consecutive polls that show the pod RUNNING, up for a while, with none of the GPUs it
   * asked for (capacity moved, docs/runpod-contract.md); one such report alone is not acted on.
   */
  zeroGpuPolls(pod: Pod): number {
    const none =
      pod.status === 'RUNNING' &&
      pod.runtime?.gpus !== undefined &&
      pod.runtime.gpus.length === 0 &&
      (pod.gpu?.count ?? 0) > 0 &&
      (pod.runtime.uptime ?? 0) > 0;
    this.#zeroGpuPolls = none ? this.#zeroGpuPolls + 1 : 0;
    return this.#zeroGpuPolls;
  }

  constructor(options: StartWatchOptions) {
    this.#options = { markerGraceMs: 90_000, ...options };
  }

  /**
   * One poll: the pod as RunPod shows it and (when readable) the log tail. Returns the first
   * sign that the pod will not become ready, or undefined.
   */
  observe(pod: Pod, logs: readonly PodLogLine[] | undefined): FailureSign | undefined {
    if (pod.status !== 'RUNNING') return undefined;
    // Only what this start produced: a resumed pod's log still holds its earlier starts. No
    // slack for clock skew on purpose: a skewed clock can only hide lines, never add old ones.
    const recent = (logs ?? []).filter((l) => {
      const ts = Date.parse(l.ts);
      return Number.isNaN(ts) || ts >= this.#options.since;
    });
    const container = recent.filter((l) => l.source !== 'system');
    const shown = recent
      .slice(-SHOWN_LINES)
      .map((l) => `${l.source === 'system' ? '[system] ' : ''}${l.line}`);

    const argparse = container.find((l) => ARGPARSE.test(l.line));
    if (argparse !== undefined) {
      return {
        kind: 'vllm_arguments',
        cause: `vLLM refused its arguments (${argparse.line.slice(0, 160)})`,
        fix: FIX_ARGS,
        lastLines: shown,
      };
    }
    const starts = recent.filter((l) => l.source === 'system' && START_CONTAINER.test(l.line)).length;
    if (starts >= 2) {
      return {
        kind: 'crash_loop',
        cause: `its container started ${starts} times: the process exits and RunPod restarts it (a crash loop)`,
        fix: 'read the last log lines: a model that does not fit the GPU (--min-vram, --gpu, --max-model-len), a gated model without HF_TOKEN, or a bad image tag; then `runpod-llm up` again',
        lastLines: shown,
      };
    }
    const uptime = pod.runtime?.uptime;
    if (uptime !== undefined && this.#lastUptime !== undefined && uptime < this.#lastUptime) {
      return {
        kind: 'restarted',
        cause: `its container restarted (uptime ${this.#lastUptime} s → ${uptime} s): the process exited`,
        fix: 'read the last log lines (out of memory for the model, a bad model id, a CUDA error); then `runpod-llm up` again, e.g. with a bigger GPU (--min-vram) or a smaller --max-model-len',
        lastLines: shown,
      };
    }
    if (uptime !== undefined) this.#lastUptime = uptime;
    if (
      this.#options.expectMarker &&
      uptime !== undefined &&
      uptime * 1000 >= this.#options.markerGraceMs &&
      container.length > 0
    ) {
      if (!container.some((l) => l.line.startsWith(START_MARKER))) {
        return {
          kind: 'no_start_marker',
          cause: `its start script never ran: no "${START_MARKER}" line after ${uptime} s of container output`,
          fix: FIX_ARGS,
          lastLines: shown,
        };
      }
    }
    return undefined;
  }
}
