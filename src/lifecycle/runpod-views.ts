import type { GpuType, Pod } from '../runpod/schemas.js';
import type { GpuCloud, GpuOffer } from './gpu-choice.js';
import { VLLM_PORT } from './run-settings.js';

/**
 * RunPod's shapes adapted to the pure modules' inputs (`planGpus`, readiness), so those stay
 * free of API details. (The watchdog's `toLivePod` is in watchdog/read-live.ts.)
 */

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
