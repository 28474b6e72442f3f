import { randomBytes } from 'node:crypto';
import {
  guardedPodStart,
  guardVersion,
  type PodRecipeInput,
  readGuardSource,
  unguardedPodStart,
} from '../guard/recipe.js';
import type { CreatePodRequest } from '../runpod/schemas.js';
import { INSTALL_ENV } from '../state/install.js';
import { type RunSettings, VLLM_PORT } from './run-settings.js';

/*
 * The pod `up` asks RunPod for (docs/runpod-contract.md): the pinned vLLM image, port 8000 exposed over
 * RunPod's HTTP proxy, a fresh random key per pod (env `VLLM_API_KEY`, never in `args`), the
 * Hugging Face cache on the volume so a restart does not download again, `HF_TOKEN` only when set.
 *
 * By default the pod runs the guarded start command (src/guard/recipe.ts): vLLM on loopback and
 * the guard on the public port, so the pod URL answers only `/health` and four `/v1` routes with
 * the key. Unguarded (`up --unguarded`, `manager.guard: false`) is plain `vllm serve` arguments,
 * with vLLM's open routes (/invocations, /tokenize, /pause, …) reachable by anyone.
 */

/** What makes one pod distinct: its unique name, GPU, key, runtime deadline and creating install. */
export interface PodIdentity {
  /** Unique `runpod-llm-<shortid>`: how a 5xx-but-created pod is found, and orphans recognised. */
  name: string;
  gpuId: string;
  /** The pod's vLLM key (and the guard's bearer key). */
  apiKey: string;
  /** Passed through for gated models; never logged. */
  hfToken?: string | undefined;
  /** When this pod's runtime ends (Unix ms; null: no limit): the guard stops it then at the latest. */
  deadline?: number | null;
  /** The creating install (src/state/install.ts), as env `RUNPOD_LLM_INSTALL`. */
  install?: string;
}

/**
 * The guard's stop time lags the watchdog's deadline by this much, so a watchdog that is present
 * terminates the pod first (the guard can only stop it) and a laptop clock a little off the pod's
 * does not cut a pod short.
 */
export const SELF_STOP_GRACE_S = 120;

/** Where the volume is mounted, and the HF cache inside it. */
export const VOLUME_PATH = '/workspace';
export const HF_HOME = `${VOLUME_PATH}/hf`;

/** Printed once by `up` when the run is unguarded. */
export const UNGUARDED_WARNING =
  "warning: unguarded pod (--unguarded / manager.guard: false): its public URL exposes vLLM's routes that need no key " +
  '(/invocations runs completions on your GPU, /tokenize, /pause, /metrics, …) to anyone who learns the pod id; ' +
  'only /v1 is protected by the pod key. Use it only if the guarded start command fails on your image.';

/**
 * A fresh per-pod vLLM key: 32 random bytes, hex (a safe shell word either way).
 *
 * @example
 *   newPodKey() // 'vk_3f9a…' (67 characters)
 */
export function newPodKey(): string {
  return `vk_${randomBytes(32).toString('hex')}`;
}

/** Where the no-entrypoint form writes the start script inside the container. */
export const START_SCRIPT_PATH = '/tmp/runpod-llm-start.sh';

/**
 * The start script as plain `args` for an image WITHOUT an entrypoint (the way
 * SkyPilot starts v2 pods): `bash -c 'echo <base64> | base64 -d > <file> && exec bash <file>'`.
 * Base64 keeps the script out of RunPod's word splitting and quoting; only safe characters
 * travel. `exec` makes the script PID 1's successor so it receives RunPod's SIGTERM.
 *
 * @example
 *   shellStartArgs('echo hi') // "bash -c 'echo ZWNobyBoaQ== | base64 -d > /tmp/runpod-llm-start.sh && exec bash /tmp/runpod-llm-start.sh'"
 */
export function shellStartArgs(script: string): string {
  const packed = Buffer.from(script, 'utf8').toString('base64');
  return `bash -c 'echo ${packed} | base64 -d > ${START_SCRIPT_PATH} && exec bash ${START_SCRIPT_PATH}'`;
}

/** The shell command inside a JSON start command (`cmd[0]`). */
function jsonStartShell(args: string): string {
  const cmd = (JSON.parse(args) as { cmd?: unknown }).cmd;
  if (!Array.isArray(cmd) || typeof cmd[0] !== 'string')
    throw new TypeError('the guarded start command has no shell command');
  return cmd[0];
}

/** The pod's start recipe and the guard version it carries (null: unguarded). */
export interface PodCreate {
  request: CreatePodRequest;
  guard: string | null;
}

/**
 * The `POST /v2/pods` body, guarded unless the run says otherwise. `guardSource` defaults to
 * the shipped guard (read here, at create time, never at import).
 *
 * @example
 *   const { request, guard } = buildCreateRequest(settings, { name: newPodName(), gpuId: 'NVIDIA RTX A5000', apiKey: newPodKey() });
 */
export function buildCreateRequest(settings: RunSettings, pod: PodIdentity, guardSource?: string): PodCreate {
  const input: PodRecipeInput = {
    model: settings.model,
    servedName: settings.servedModelName,
    maxModelLen: settings.maxModelLen,
    gpuMemoryUtilization: settings.gpuMemoryUtilization,
    podKey: pod.apiKey,
    hfToken: pod.hfToken,
    selfStop: {
      leaseSeconds: settings.podLeaseMs === null ? null : Math.ceil(settings.podLeaseMs / 1000),
      stopAtSeconds:
        pod.deadline === undefined || pod.deadline === null
          ? null
          : Math.ceil(pod.deadline / 1000) + SELF_STOP_GRACE_S,
      runpodApiUrl: settings.runpodApiUrl,
    },
  };
  let start;
  let guard: string | null = null;
  if (settings.guarded) {
    const source = guardSource ?? readGuardSource();
    start = guardedPodStart(input, source);
    guard = guardVersion(source);
    if (settings.startForm === 'shell')
      start = { ...start, args: shellStartArgs(jsonStartShell(start.args)) };
  } else {
    start = unguardedPodStart(input);
  }
  const request: CreatePodRequest = {
    name: pod.name,
    image: settings.image,
    args: start.args,
    env: { HF_HOME, ...(pod.install === undefined ? {} : { [INSTALL_ENV]: pod.install }), ...start.env },
    ports: [`${VLLM_PORT}/http`],
    disk: settings.containerDiskGb,
    gpu: { id: pod.gpuId, count: settings.gpuCount },
    cloud: settings.cloud,
  };
  if (settings.volumeGb > 0)
    request.mounts = { persistent: { size: Math.max(10, settings.volumeGb), path: VOLUME_PATH } };
  return { request, guard };
}
