import { randomBytes } from 'node:crypto';
import type { Cloud, PodStatus } from '../runpod/schemas.js';
import type { EmulatorCpu } from './cpu-catalog.js';
import type { EmulatorGpu } from './gpu-catalog.js';
import type { VllmLaunch } from './pod-args.js';
import type { VllmStandinHandler } from './vllm-standin.js';

/**
 * One emulated pod as the store keeps it, and the shapes around it (the status schedule, log
 * lines, the container-start notice): shared by the store (pods.ts), the API view (pod-view.ts)
 * and the container reading (container-command.ts), so none of them imports another for a type.
 */

export interface Schedule {
  /** PROVISIONING → STARTING (image pull, machine assignment). */
  provisioningMs: number;
  /** STARTING → RUNNING (container start). */
  startingMs: number;
  /** RUNNING → the vLLM stand-in answers (model load); 502 until then. */
  loadMs: number;
  /** A container whose process exited is started again this long after (restart on exit). */
  restartMs: number;
  /** A process that cannot run (argparse error, crash loop) exits this long after it starts. */
  crashMs: number;
}

/** One line of a pod's log, as `GET /v2/pods/{id}/logs` streams it. */
export interface PodLogLine {
  ts: number;
  source: 'container' | 'system';
  line: string;
}

/** What the emulator tells a test each time a pod's container starts (`onContainerStart`). */
export interface ContainerStart {
  podId: string;
  image: string;
  args: string;
  /** The container's environment: the request's env plus what RunPod adds (RUNPOD_POD_ID, RUNPOD_API_KEY…). */
  env: Record<string, string>;
  /** The shell command when the JSON start command was honoured, else undefined. */
  shell: string | undefined;
  /** 1 for the first start, 2 after the first restart, … */
  start: number;
}

export interface PodRecord {
  readonly id: string;
  readonly name: string;
  readonly request: {
    image: string;
    args: string;
    env: Record<string, string>;
    ports: string[];
    disk: number;
    mounts: unknown;
    registry: string | null;
  };
  readonly cloud: Cloud;
  /** GPU pods: the type; CPU pods: undefined. */
  readonly gpu: EmulatorGpu | undefined;
  readonly gpuCount: number;
  /** CPU pods: the flavor and size; GPU pods: undefined. */
  readonly cpu: { flavor: EmulatorCpu; vcpuCount: number } | undefined;
  readonly dataCenterId: string;
  readonly createdAt: number;
  readonly launch: VllmLaunch;
  /** The pod-scoped key RunPod puts in the pod's env as RUNPOD_API_KEY. Never shown by the API. */
  readonly podKey: string;
  status: PodStatus;
  /** When the current status began. */
  since: number;
  startedAt: number | null;
  /** Came back from start/restart without its GPUs (fault). */
  zeroGpus: boolean;
  standin: VllmStandinHandler | undefined;
  /** When the stand-in loads; undefined = loaded already, or never. */
  loadAt: number | undefined;
  /** When the current container started (runtime.uptime); undefined while none runs. */
  containerStartedAt: number | undefined;
  /** When the running process exits by itself (argparse error, crash loop, a script that ends). */
  exitAt: number | undefined;
  exitCode: number;
  /** When an exited container is started again (restart on exit). */
  restartAt: number | undefined;
  /** Every start crashes before the model loads (fault `podCrash` with `loop`). */
  crashLoop: boolean;
  /** Container starts so far. */
  starts: number;
  /** The pod's log, oldest first, bounded to {@link MAX_LOG_LINES}. */
  readonly logs: PodLogLine[];
  billedUntil: number;
}

export const MAX_LOG_LINES = 5_000;

/** A RunPod-like pod id: 14 lowercase letters and digits. */
export function newPodId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(14)].map((b) => alphabet[b % alphabet.length]).join('');
}
