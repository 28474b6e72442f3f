import { z } from 'zod';

/**
 * RunPod REST v2 shapes, named exactly as in RunPod's OpenAPI document
 * (`components.schemas` of openapi-v2.json, version 2.0.0).
 *
 * Response schemas are tolerant readers: unknown fields are dropped (RunPod adds fields without
 * a version bump), fields this tool reads are required with the spec's types, and required-by-spec
 * fields the tool never reads (`ssh`, `mounts`, `globalNetworking`, …) are optional so a change in
 * them cannot stop us from stopping a pod that is billing. Request schemas are strict, as the spec
 * is (`unevaluatedProperties: false`): the emulator answers 422 for a body they reject.
 */

/** `PodStatus`. */
export const PodStatusSchema = z.enum([
  'PROVISIONING',
  'STARTING',
  'RUNNING',
  'EXITED',
  'ERROR',
  'TERMINATED',
]);
export type PodStatus = z.infer<typeof PodStatusSchema>;

/** `PodAction`. */
export const PodActionSchema = z.enum(['start', 'stop', 'restart', 'terminate']);
export type PodAction = z.infer<typeof PodActionSchema>;

/** `Cloud` (also `GpuCloudFilter`). */
export const CloudSchema = z.enum(['SECURE', 'COMMUNITY']);
export type Cloud = z.infer<typeof CloudSchema>;

/** `AvailabilityLevel`. */
export const AvailabilityLevelSchema = z.enum(['NONE', 'LOW', 'MEDIUM', 'HIGH']);
export type AvailabilityLevel = z.infer<typeof AvailabilityLevelSchema>;

/** `PodRuntimePort`: one live port mapping. No field is required by the spec. */
export const PodRuntimePortSchema = z.object({
  private: z.number().int().optional(),
  public: z.number().int().nullable().optional(),
  type: z.string().optional(),
  ip: z.string().nullable().optional(),
});

const UtilizationSchema = z.object({ util: z.number().optional() });

/** `PodRuntime`: present (non-null) only while the pod is RUNNING. */
export const PodRuntimeSchema = z.object({
  uptime: z.number().int().optional(),
  gpus: z.array(z.object({ util: z.number().optional(), memoryUtil: z.number().optional() })).optional(),
  cpu: UtilizationSchema.optional(),
  memory: UtilizationSchema.optional(),
  ports: z.array(PodRuntimePortSchema).optional(),
});

/** `GpuConfig` as the pod reports it. */
export const GpuConfigSchema = z.object({
  id: z.string(),
  count: z.number().int().optional(),
});

/**
 * `Pod`, read tolerantly (docs/runpod-contract.md, "Off-spec values on listed pods"). Only
 * what the tool cannot do without is required: `id`, `name`, a known `status`, `cost`. Action
 * values the spec does not list are dropped; missing `args`, `env`, `ports`, `image`,
 * `dataCenterId`, `startedAt` or `runtime` read as empty/null; `runtime: {}` is accepted.
 */
export const PodSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  status: PodStatusSchema,
  actions: z
    .array(z.unknown())
    .default([])
    .transform((list) => list.filter((a): a is PodAction => PodActionSchema.safeParse(a).success)),
  image: z.string().default(''),
  args: z
    .string()
    .nullable()
    .default('')
    .transform((v) => v ?? ''),
  disk: z.number().int().optional(),
  ports: z
    .array(z.string())
    .nullable()
    .default([])
    .transform((v) => v ?? []),
  env: z
    .record(z.string(), z.string())
    .nullable()
    .default({})
    .transform((v) => v ?? {}),
  registry: z.string().nullable().optional(),
  cloud: z.string().default('SECURE'),
  dataCenterId: z.string().nullable().default(null),
  cudaVersion: z.string().nullable().optional(),
  ssh: z.unknown().optional(),
  mounts: z.unknown().optional(),
  template: z.string().nullable().optional(),
  cost: z.number(),
  locked: z.boolean().optional(),
  globalNetworking: z.object({ enabled: z.boolean() }).optional(),
  runtime: PodRuntimeSchema.nullable().default(null),
  createdAt: z.string().default(''),
  startedAt: z.string().nullable().default(null),
  gpu: GpuConfigSchema.optional(),
  /** `CpuConfig`: present on CPU pods instead of `gpu`. */
  cpu: z.object({ id: z.string(), vcpuCount: z.number().int(), memory: z.number().optional() }).optional(),
});
export type Pod = z.output<typeof PodSchema>;

/** A listed pod that could not be read (unknown status, a required field missing): skipped. */
export interface SkippedPod {
  id: string | undefined;
  name: string | undefined;
  /** Why, in a few words ("status: unknown value \"PAUSED\""). */
  reason: string;
}

/** `ListPodsResponse`: the list is wrapped, `{"pods":[...]}`; items are parsed one by one. */
export const ListPodsResponseSchema = z.object({ pods: z.array(z.unknown()) });

/** The readable pods of a list, and the ones that were not (never breaks on one odd pod). */
export function parsePodList(items: readonly unknown[]): { pods: Pod[]; skipped: SkippedPod[] } {
  const pods: Pod[] = [];
  const skipped: SkippedPod[] = [];
  for (const item of items) {
    const parsed = PodSchema.safeParse(item);
    if (parsed.success) {
      pods.push(parsed.data);
      continue;
    }
    const raw = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') ?? '';
    const value = issue !== undefined && issue.path.length === 1 ? raw[String(issue.path[0])] : undefined;
    skipped.push({
      id: typeof raw.id === 'string' ? raw.id : undefined,
      name: typeof raw.name === 'string' ? raw.name : undefined,
      reason: `${field || 'item'}: ${value === undefined ? (issue?.message ?? 'invalid') : `unexpected value ${JSON.stringify(value).slice(0, 40)}`}`,
    });
  }
  return { pods, skipped };
}

/** `GpuType` from `GET /v2/catalog/gpus`; availability fields only with `include=AVAILABILITY`. */
export const GpuTypeSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  pool: z.string().nullable().optional(),
  // GpuManufacturer is an enum in the spec; a string here so a new vendor cannot break the catalog.
  manufacturer: z.string().optional(),
  memory: z.number().int(),
  secure: z.boolean(),
  community: z.boolean(),
  price: z.object({ secure: z.number(), community: z.number(), serverless: z.number().optional() }),
  maxCount: z.object({ secure: z.number().int(), community: z.number().int() }),
  availability: AvailabilityLevelSchema.optional(),
  dataCenters: z
    .array(z.object({ id: z.string(), name: z.string(), availability: AvailabilityLevelSchema }))
    .optional(),
  cudaVersions: z.array(z.object({ version: z.string(), available: z.boolean() })).optional(),
});
export type GpuType = z.infer<typeof GpuTypeSchema>;

/** `ListGpuTypesResponse`. */
export const ListGpuTypesResponseSchema = z.object({ gpus: z.array(GpuTypeSchema) });

/** `PodBillingAmounts` + `BillingTimeRange` + `podId` = `PodBillingRecord`. */
export const PodBillingAmountsSchema = z.object({
  totalAmount: z.number(),
  gpuAmount: z.number(),
  cpuAmount: z.number(),
  diskAmount: z.number(),
});

export const PodBillingRecordSchema = PodBillingAmountsSchema.extend({
  startTime: z.string(),
  endTime: z.string(),
  podId: z.string(),
});
export type PodBillingRecord = z.infer<typeof PodBillingRecordSchema>;

export const BillingBucketSizeSchema = z.enum(['hour', 'day', 'week', 'month', 'year']);
export type BillingBucketSize = z.infer<typeof BillingBucketSizeSchema>;

/** `ListPodBillingResponse`. */
export const ListPodBillingResponseSchema = z.object({
  records: z.array(PodBillingRecordSchema),
  metadata: z.object({
    query: z.object({
      startTime: z.string(),
      endTime: z.string(),
      bucketSize: BillingBucketSizeSchema,
      podId: z.string().nullable().optional(),
    }),
    recordCount: z.number().int(),
    uniquePodCount: z.number().int(),
    totals: PodBillingAmountsSchema,
  }),
});
export type ListPodBillingResponse = z.infer<typeof ListPodBillingResponseSchema>;

/** `ErrorResponse`: RFC 9457 problem details, `application/problem+json`. */
export const ProblemSchema = z.object({
  title: z.string().optional(),
  status: z.number().int().optional(),
  detail: z.string().optional(),
  errors: z.array(z.string()).optional(),
});
export type Problem = z.infer<typeof ProblemSchema>;

const CudaVersionPattern = /^\d+\.\d+$/;

/** `CreateGpuConfig` (strict: `unevaluatedProperties: false`). */
export const CreateGpuConfigSchema = z.strictObject({
  id: z.string(),
  count: z.number().int().min(1).optional(),
  allowedCudaVersions: z.array(z.string().regex(CudaVersionPattern)).optional(),
  minCudaVersion: z.string().regex(CudaVersionPattern).optional(),
});

/** `Mounts` (strict, at most one network mount). */
export const MountsSchema = z.strictObject({
  persistent: z.strictObject({ size: z.number().int().min(10), path: z.string() }).optional(),
  network: z
    .array(z.strictObject({ volumeId: z.string(), path: z.string() }))
    .max(1)
    .optional(),
});

/**
 * `CreatePodRequest` = `ContainerConfig` + pod fields, `unevaluatedProperties: false`, and
 * `image` required unless `templateId` is set. The one-of-gpu-or-cpu rule is a handler rule
 * (400), not a schema rule.
 */
export const CreatePodRequestSchema = z
  .strictObject({
    name: z.string().min(1),
    image: z.string().optional(),
    args: z.string().optional(),
    disk: z.number().int().min(1).optional(),
    env: z.record(z.string(), z.string()).optional(),
    ports: z.array(z.string()).optional(),
    registry: z.string().nullable().optional(),
    cloud: CloudSchema.optional(),
    cpu: z.strictObject({ id: z.string().min(1), vcpuCount: z.number().int().min(2) }).optional(),
    dataCenterIds: z.array(z.string()).optional(),
    globalNetworking: z.boolean().optional(),
    gpu: CreateGpuConfigSchema.optional(),
    mounts: MountsSchema.optional(),
    startJupyter: z.boolean().optional(),
    startSsh: z.boolean().optional(),
    templateId: z.string().min(1).optional(),
  })
  .refine((body) => body.templateId !== undefined || body.image !== undefined, {
    message: "required property 'image' missing (required unless templateId is set)",
    path: ['image'],
  });
export type CreatePodRequest = z.input<typeof CreatePodRequestSchema>;

/** `PodActionRequest`. */
export const PodActionRequestSchema = z.strictObject({ action: PodActionSchema });
