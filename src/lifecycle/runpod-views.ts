import type { GpuType, Pod } from '../runpod/schemas.js';
import type { LivePod } from '../watchdog/decide.js';
import type { GpuCloud, GpuOffer } from './gpu-choice.js';
import { VLLM_PORT } from './run-settings.js';

/**
 * RunPod's shapes adapted to the pure modules' inputs (`decide`, `planGpus`), so those stay
 * free of API details.
 */

/**
 * What `decide` needs of a pod. GPUs are counted from the runtime while RUNNING (a restarted pod
 * can come back with none, CONTRACT.md); before that the requested count stands.
 */
export function toLivePod(pod: Pod): LivePod {
  const running = pod.status === 'RUNNING' && pod.runtime !== null;
  const gpuCount = running ? (pod.runtime?.gpus?.length ?? pod.gpu?.count ?? 0) : (pod.gpu?.count ?? 0);
  const started = pod.startedAt === null ? null : Date.parse(pod.startedAt);
  return {
    id: pod.id,
    name: pod.name,
    status: pod.status,
    costPerHr: pod.cost,
    gpuCount,
    startedAt: started === null || Number.isNaN(started) ? null : started,
  };
}

/** A catalog entry as `planGpus` reads it; a type not offered on a cloud has no price there. */
export function toGpuOffer(gpu: GpuType, cloud: GpuCloud): GpuOffer {
  const offer: GpuOffer = {
    id: gpu.id,
    name: gpu.name,
    memoryGb: gpu.memory,
    securePrice: gpu.secure ? gpu.price.secure : null,
    communityPrice: gpu.community ? gpu.price.community : null,
    maxCount: cloud === 'SECURE' ? gpu.maxCount.secure : gpu.maxCount.community,
  };
  if (gpu.availability !== undefined) offer.availability = gpu.availability;
  return offer;
}

/** True once RunPod maps the vLLM port (the proxy can only reach a mapped port). */
export function portMapped(pod: Pod, port: number = VLLM_PORT): boolean {
  return (pod.runtime?.ports ?? []).some((p) => p.private === port);
}
