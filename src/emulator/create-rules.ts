import { type CreatePodRequest, CreatePodRequestSchema, type Cloud } from '../runpod/schemas.js';
import type { EmulatorCpu } from './cpu-catalog.js';
import { NO_CAPACITY_DETAIL, type Faults } from './faults.js';
import { availabilityFor, type EmulatorGpu } from './gpu-catalog.js';
import type { PodRecord } from './pod-record.js';
import { ProblemError, validationProblem } from './problem.js';

const PORT_SPEC = /^(\d{1,5})\/(http|tcp|udp)$/;

/** Where a create request lands: the cloud, the GPU type or CPU flavor, the count, the data center. */
export interface Placement {
  req: CreatePodRequest;
  cloud: Cloud;
  gpu: EmulatorGpu | undefined;
  cpu: PodRecord['cpu'];
  count: number;
  dataCenterId: string | undefined;
}

/**
 * RunPod's rules for `POST /v2/pods`, in its order: 422 for the schema, 400 for the rules
 * (exactly one of gpu/cpu, port specs, CPU sizes, GPU counts), 402 for the balance, 400 with
 * RunPod's no-capacity text when nothing is in stock (or the fault says so). Throws the
 * problem; else says where the pod goes.
 */
export function placePod(
  body: unknown,
  deps: { catalog: readonly EmulatorGpu[]; cpuCatalog: readonly EmulatorCpu[]; faults: Faults },
): Placement {
  const parsed = CreatePodRequestSchema.safeParse(body);
  if (!parsed.success) throw validationProblem(parsed.error);
  const req = parsed.data;
  const { faults } = deps;
  if ((req.gpu === undefined) === (req.cpu === undefined))
    throw new ProblemError(400, 'exactly one of gpu or cpu must be set');
  if (req.templateId !== undefined) throw new ProblemError(404, `template ${req.templateId} not found`);
  const bad = (req.ports ?? []).find((p) => !PORT_SPEC.test(p));
  if (bad !== undefined)
    throw new ProblemError(400, `invalid port "${bad}": expected port/protocol such as 8000/http`);
  const cloud = req.cloud ?? 'SECURE';
  let gpu: EmulatorGpu | undefined;
  let cpu: PodRecord['cpu'];
  let count = 0;
  let dataCenterId: string | undefined;
  const wanted = req.dataCenterIds ?? [];
  if (req.cpu !== undefined) {
    const flavor = deps.cpuCatalog.find((c) => c.id === req.cpu?.id);
    if (flavor === undefined) throw new ProblemError(400, `cpu flavor "${req.cpu.id}" not found`);
    const n = req.cpu.vcpuCount;
    if ((n & (n - 1)) !== 0 || n < flavor.vcpu.min || n > flavor.vcpu.max) {
      throw new ProblemError(
        400,
        `vcpuCount ${n} is not valid for ${flavor.id}: a power of two in ${flavor.vcpu.min}..${flavor.vcpu.max}`,
      );
    }
    if (req.mounts?.persistent !== undefined)
      throw new ProblemError(400, 'mounts.persistent is invalid for CPU pods');
    cpu = { flavor, vcpuCount: n };
    dataCenterId = flavor.dataCenters.find((dc) => wanted.length === 0 || wanted.includes(dc.id))?.id;
    if (faults.isNoCapacity(flavor.id) || dataCenterId === undefined)
      throw new ProblemError(400, NO_CAPACITY_DETAIL);
    if (faults.settings.insufficientBalance)
      throw new ProblemError(402, 'insufficient balance to deploy this pod');
  } else if (req.gpu !== undefined) {
    gpu = deps.catalog.find((g) => g.id === req.gpu?.id);
    if (gpu === undefined) throw new ProblemError(400, `gpu type "${req.gpu.id}" not found`);
    count = req.gpu.count ?? 1;
    const max = cloud === 'SECURE' ? gpu.maxCount.secure : gpu.maxCount.community;
    if (count > max)
      throw new ProblemError(
        400,
        `gpu count ${count} exceeds the maximum of ${max} for ${gpu.id} on ${cloud}`,
      );
    if (faults.settings.insufficientBalance)
      throw new ProblemError(402, 'insufficient balance to deploy this pod');
    dataCenterId = gpu.dataCenters.find((dc) => wanted.length === 0 || wanted.includes(dc.id))?.id;
    if (
      faults.isNoCapacity(gpu.id) ||
      availabilityFor(gpu, cloud, count) === 'NONE' ||
      dataCenterId === undefined
    ) {
      throw new ProblemError(400, NO_CAPACITY_DETAIL);
    }
  }
  return { req, cloud, gpu, cpu, count, dataCenterId };
}
