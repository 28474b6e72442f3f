/*
 * A small CPU flavor catalog for the emulator, shaped like RunPod's `GET /v2/catalog/cpus`
 * (`CpuType`). CPU pods bill per vCPU (`price.securePerVcpu` × `vcpuCount`); memory is derived
 * from the flavor (`ramGbPerVcpu` × vCPUs), as the spec says for `POST /v2/pods` with `cpu`.
 * Prices are plausible, not RunPod's.
 */

/** One CPU flavor of the emulated catalog. */
export interface EmulatorCpu {
  id: string;
  name: string;
  group: string;
  vcpu: { min: number; max: number };
  ramGbPerVcpu: number;
  price: { securePerVcpu: number; serverlessPerVcpu: number };
  dataCenters: Array<{ id: string; name: string }>;
}

export const DEFAULT_CPU_CATALOG: readonly EmulatorCpu[] = [
  {
    id: 'cpu3c',
    name: 'Compute-Optimized',
    group: 'Gen 3',
    vcpu: { min: 2, max: 32 },
    ramGbPerVcpu: 2,
    price: { securePerVcpu: 0.03, serverlessPerVcpu: 0.025 },
    dataCenters: [{ id: 'US-KS-2', name: 'US Kansas 2' }],
  },
  {
    id: 'cpu3g',
    name: 'General Purpose',
    group: 'Gen 3',
    vcpu: { min: 2, max: 32 },
    ramGbPerVcpu: 4,
    price: { securePerVcpu: 0.04, serverlessPerVcpu: 0.035 },
    dataCenters: [{ id: 'EU-RO-1', name: 'EU Romania 1' }],
  },
];

/** The catalog entry as `GET /v2/catalog/cpus` answers it (availability only when asked). */
export function toApiCpuType(cpu: EmulatorCpu, includeAvailability: boolean): Record<string, unknown> {
  const base = {
    id: cpu.id,
    name: cpu.name,
    group: cpu.group,
    vcpu: { ...cpu.vcpu },
    ramGbPerVcpu: cpu.ramGbPerVcpu,
    price: { ...cpu.price },
  };
  if (!includeAvailability) return base;
  return {
    ...base,
    availability: 'HIGH',
    dataCenters: cpu.dataCenters.map((dc) => ({ ...dc, availability: 'HIGH' })),
  };
}

/** USD/hour for a CPU pod of this flavor and size. */
export function cpuPodPrice(cpu: EmulatorCpu, vcpuCount: number): number {
  return Math.round(cpu.price.securePerVcpu * vcpuCount * 1000) / 1000;
}
