import { randomBytes } from 'node:crypto';
import type { CreatePodRequest } from '../runpod/schemas.js';
import { type RunSettings, VLLM_PORT } from './run-settings.js';

/**
 * The pod `up` asks RunPod for (CONTRACT.md): the pinned vLLM image, its entrypoint
 * (`vllm serve`) given the model and flags in `args`, port 8000 exposed over RunPod's HTTP
 * proxy, a fresh random key per pod so the public pod URL's `/v1` is not open, the Hugging Face
 * cache on the volume so a restart does not download again, and `HF_TOKEN` only when set.
 */
export interface PodIdentity {
  /** Unique `runpod-llm-<shortid>`: how a 5xx-but-created pod is found, and orphans recognised. */
  name: string;
  gpuId: string;
  /** The pod's vLLM `--api-key`. */
  apiKey: string;
  /** Passed through for gated models; never logged. */
  hfToken?: string | undefined;
}

/** Where the volume is mounted, and the HF cache inside it. */
export const VOLUME_PATH = '/workspace';
export const HF_HOME = `${VOLUME_PATH}/hf`;

/**
 * A fresh per-pod vLLM key: 32 random bytes, hex (safe inside the pod's argument string).
 *
 * @example
 *   newPodKey() // 'vk_3f9a…' (67 characters)
 */
export function newPodKey(): string {
  return `vk_${randomBytes(32).toString('hex')}`;
}

/**
 * The `POST /v2/pods` body.
 *
 * @example
 *   buildCreateRequest(settings, { name: newPodName(), gpuId: 'NVIDIA RTX A5000', apiKey: newPodKey() });
 */
export function buildCreateRequest(settings: RunSettings, pod: PodIdentity): CreatePodRequest {
  const args = [
    settings.model,
    '--host', '0.0.0.0',
    '--port', String(VLLM_PORT),
    '--served-model-name', settings.servedModelName,
    '--max-model-len', String(settings.maxModelLen),
    '--gpu-memory-utilization', settings.gpuMemoryUtilization.toFixed(2),
    '--api-key', pod.apiKey,
  ];
  const env: Record<string, string> = { HF_HOME };
  if (pod.hfToken !== undefined && pod.hfToken !== '') env.HF_TOKEN = pod.hfToken;
  const request: CreatePodRequest = {
    name: pod.name,
    image: settings.image,
    args: args.join(' '),
    env,
    ports: [`${VLLM_PORT}/http`],
    disk: settings.containerDiskGb,
    gpu: { id: pod.gpuId, count: settings.gpuCount },
    cloud: settings.cloud,
  };
  if (settings.volumeGb > 0) request.mounts = { persistent: { size: Math.max(10, settings.volumeGb), path: VOLUME_PATH } };
  return request;
}
