import type { AvailabilityLevel, Cloud, GpuType } from '../runpod/schemas.js';

/*
 * A small GPU catalog for the emulator, shaped like RunPod's `GET /v2/catalog/gpus`. Ids are
 * RunPod's real GPU type ids; prices are plausible USD/hour per GPU (late-2026 list prices vary,
 * the tool must never hard-code them); stock differs per cloud so GPU choice has something to
 * choose between. A GPU whose stock is NONE in a cloud fails create there with RunPod's
 * no-capacity 400, as a sold-out type does.
 */

/** One GPU type of the emulated catalog (RunPod's `GpuType` fields the emulator uses). */
export interface EmulatorGpu {
  id: string;
  name: string;
  pool: string | null;
  memory: number;
  price: { secure: number; community: number; serverless?: number };
  maxCount: { secure: number; community: number };
  /** Stock per cloud; a cloud where the type is not offered at all is absent. */
  stock: Partial<Record<Cloud, AvailabilityLevel>>;
  dataCenters: Array<{ id: string; name: string }>;
  cudaVersions: string[];
}

const DC = {
  'US-TX-3': 'US Texas 3',
  'US-KS-2': 'US Kansas 2',
  'EU-RO-1': 'EU Romania 1',
  'EU-SE-1': 'EU Sweden 1',
  'CA-MTL-1': 'CA Montreal 1',
} as const;
type DcId = keyof typeof DC;
const dcs = (...ids: DcId[]): Array<{ id: string; name: string }> => ids.map((id) => ({ id, name: DC[id] }));

export const DEFAULT_GPU_CATALOG: readonly EmulatorGpu[] = [
  {
    id: 'NVIDIA RTX A5000',
    name: 'RTX A5000',
    pool: 'AMPERE_24',
    memory: 24,
    price: { secure: 0.27, community: 0.16, serverless: 0.58 },
    maxCount: { secure: 8, community: 8 },
    stock: { SECURE: 'HIGH', COMMUNITY: 'MEDIUM' },
    dataCenters: dcs('US-TX-3', 'EU-RO-1', 'CA-MTL-1'),
    cudaVersions: ['12.8', '12.6', '12.4'],
  },
  {
    id: 'NVIDIA GeForce RTX 4090',
    name: 'RTX 4090',
    pool: 'ADA_24',
    memory: 24,
    price: { secure: 0.69, community: 0.34, serverless: 1.1 },
    maxCount: { secure: 8, community: 4 },
    stock: { SECURE: 'MEDIUM', COMMUNITY: 'HIGH' },
    dataCenters: dcs('US-KS-2', 'EU-RO-1', 'EU-SE-1'),
    cudaVersions: ['12.8', '12.6'],
  },
  {
    id: 'NVIDIA RTX A6000',
    name: 'RTX A6000',
    pool: 'AMPERE_48',
    memory: 48,
    price: { secure: 0.49, community: 0.33, serverless: 1.22 },
    maxCount: { secure: 8, community: 4 },
    stock: { SECURE: 'LOW', COMMUNITY: 'MEDIUM' },
    dataCenters: dcs('US-TX-3', 'CA-MTL-1'),
    cudaVersions: ['12.8', '12.4'],
  },
  {
    id: 'NVIDIA L40S',
    name: 'L40S',
    pool: 'ADA_48_PRO',
    memory: 48,
    price: { secure: 0.86, community: 0.79, serverless: 1.9 },
    maxCount: { secure: 8, community: 2 },
    stock: { SECURE: 'MEDIUM', COMMUNITY: 'NONE' },
    dataCenters: dcs('US-KS-2', 'EU-SE-1'),
    cudaVersions: ['12.8'],
  },
  {
    id: 'NVIDIA A100 80GB PCIe',
    name: 'A100 PCIe',
    pool: 'AMPERE_80',
    memory: 80,
    price: { secure: 1.64, community: 1.19, serverless: 2.72 },
    maxCount: { secure: 8, community: 4 },
    stock: { SECURE: 'LOW', COMMUNITY: 'LOW' },
    dataCenters: dcs('US-TX-3', 'EU-RO-1'),
    cudaVersions: ['12.8', '12.6', '12.4'],
  },
  {
    id: 'NVIDIA H100 80GB HBM3',
    name: 'H100 SXM',
    pool: 'HOPPER_141',
    memory: 80,
    price: { secure: 2.69, community: 2.39, serverless: 4.18 },
    maxCount: { secure: 8, community: 8 },
    stock: { SECURE: 'LOW' },
    dataCenters: dcs('US-KS-2', 'EU-SE-1'),
    cudaVersions: ['12.8', '12.6'],
  },
];

export interface CatalogQuery {
  includeAvailability: boolean;
  cloud: Cloud;
  count: number;
}

/** One catalog entry as the API shows it (availability only when asked for). */
export function toApiGpuType(gpu: EmulatorGpu, query: CatalogQuery): GpuType {
  const out: GpuType = {
    id: gpu.id,
    name: gpu.name,
    pool: gpu.pool,
    manufacturer: 'NVIDIA',
    memory: gpu.memory,
    secure: gpu.stock.SECURE !== undefined,
    community: gpu.stock.COMMUNITY !== undefined,
    price: { ...gpu.price },
    maxCount: { ...gpu.maxCount },
  };
  if (!query.includeAvailability) return out;
  const level = availabilityFor(gpu, query.cloud, query.count);
  out.availability = level;
  // The spec omits dataCenters entirely when the configuration is unavailable everywhere.
  if (level !== 'NONE') out.dataCenters = gpu.dataCenters.map((dc) => ({ ...dc, availability: level }));
  if (gpu.cudaVersions.length > 0) {
    out.cudaVersions = gpu.cudaVersions.map((version) => ({ version, available: level !== 'NONE' }));
  }
  return out;
}

export function availabilityFor(gpu: EmulatorGpu, cloud: Cloud, count: number): AvailabilityLevel {
  const level = gpu.stock[cloud];
  if (level === undefined) return 'NONE';
  const max = cloud === 'SECURE' ? gpu.maxCount.secure : gpu.maxCount.community;
  return count > max ? 'NONE' : level;
}

/** USD/hour for `count` GPUs of this type in `cloud` (the catalog price is per GPU). */
export function podPrice(gpu: EmulatorGpu, cloud: Cloud, count: number): number {
  const each = cloud === 'SECURE' ? gpu.price.secure : gpu.price.community;
  return Math.round(each * count * 1000) / 1000;
}
