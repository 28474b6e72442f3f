import { z } from 'zod';
import type { ManagerConfig } from '../config/schema.js';
import type { GpuCandidate } from './gpu-choice.js';

/**
 * Everything a run needs to (re)create its pod and to be watched, frozen when `up` starts it and
 * stored with the run (`runs.config`). The watchdog recreates a dead pod from these, not from
 * whatever the configuration says later, so a recreated pod is the same pod.
 */
export const RunSettingsSchema = z.object({
  model: z.string(),
  servedModelName: z.string(),
  image: z.string(),
  maxModelLen: z.number().int(),
  gpuMemoryUtilization: z.number(),
  containerDiskGb: z.number().int(),
  volumeGb: z.number().int(),
  cloud: z.enum(['SECURE', 'COMMUNITY']),
  gpuCount: z.number().int().min(1),
  /** The user's ordered GPU ids (empty: the catalog chose). */
  gpuIds: z.array(z.string()),
  minVramGb: z.number(),
  runtimeLimitMs: z.number().nullable(),
  idleLimitMs: z.number().nullable(),
  idleAction: z.enum(['stop', 'terminate']),
  budgetUsd: z.number().nullable(),
  dailyBudgetUsd: z.number().nullable(),
  monthlyBudgetUsd: z.number().nullable(),
  readinessTimeoutMs: z.number(),
  readinessPollMs: z.number(),
  podUrlTemplate: z.string(),
  minRecreateRuntimeMs: z.number(),
  /** Pods the run keeps ready; idleness, limits and budgets apply to the group. */
  replicas: z.number().int().min(1).default(1),
  /** Pods start behind the guard (src/guard); false only after `up --unguarded`. */
  guarded: z.boolean().default(true),
  /** The guard stops its pod after this long without the manager (null: never; see guard.py). */
  podLeaseMs: z.number().nullable().default(null),
  /** RunPod's REST base URL, for the guard's self-stop from the pod. */
  runpodApiUrl: z.string().default('https://api.runpod.io'),
  /**
   * How the guarded start script reaches the container: `json` = the JSON start
   * command in `args` (replaces the image's entrypoint, where RunPod honours it); `shell` = a
   * base64-packed shell command for an image without an entrypoint (docker/vllm-noentry), for
   * when RunPod passes `args` to the entrypoint as plain arguments. Chosen by `up` from the
   * `doctor --live` verdict; kept with the run so a recreated pod starts the same way.
   */
  startForm: z.enum(['json', 'shell']).default('json'),
  /** Consecutive failed health passes after which a routed pod is dead. */
  healthFailPasses: z.number().int().min(1).default(3),
  /** Recreations per run. */
  maxRecreations: z.number().int().min(0).default(3),
  /** The GPU types `up` planned, in order: a recreate tries them again (dead pod's type first). */
  candidates: z
    .array(
      z.object({
        id: z.string(),
        name: z.string(),
        memoryGb: z.number(),
        count: z.number(),
        pricePerHr: z.number(),
      }),
    )
    .default([]),
});
export type RunSettings = z.infer<typeof RunSettingsSchema>;

/** The port vLLM listens on inside the pod and that RunPod exposes as `8000/http`. */
export const VLLM_PORT = 8000;

/**
 * Settings for a new run from the manager configuration (file + environment + flags).
 *
 * @example
 *   const settings = settingsFromConfig(config.manager);
 */
export function settingsFromConfig(m: ManagerConfig): RunSettings {
  return {
    model: m.model,
    servedModelName: m.served_model_name ?? m.model,
    image: m.vllm_image,
    maxModelLen: m.max_model_len,
    gpuMemoryUtilization: m.gpu_memory_utilization,
    containerDiskGb: m.container_disk_gb,
    volumeGb: m.volume_gb,
    cloud: m.cloud,
    gpuCount: m.gpu_count,
    gpuIds: [...m.gpu_types],
    minVramGb: m.min_vram_gb,
    runtimeLimitMs: m.runtime_limit,
    idleLimitMs: m.idle_limit,
    idleAction: m.idle_action,
    budgetUsd: m.budget_usd,
    dailyBudgetUsd: m.daily_budget_usd,
    monthlyBudgetUsd: m.monthly_budget_usd,
    readinessTimeoutMs: m.readiness_timeout,
    readinessPollMs: m.readiness_poll,
    podUrlTemplate: m.pod_url_template,
    minRecreateRuntimeMs: m.min_recreate_runtime,
    replicas: m.replicas,
    guarded: m.guard,
    podLeaseMs: m.pod_lease,
    runpodApiUrl: m.runpod_api_url,
    startForm: 'json',
    healthFailPasses: m.health_fail_passes,
    maxRecreations: m.max_recreations,
    candidates: [],
  };
}

/**
 * The settings a run was started with; `fallback` (today's configuration) fills what an older
 * or damaged record lacks, so a watchdog can always act.
 */
export function settingsOfRun(stored: Record<string, unknown>, fallback: RunSettings): RunSettings {
  const parsed = RunSettingsSchema.safeParse({ ...fallback, ...stored });
  return parsed.success ? parsed.data : fallback;
}

/** Plain data for `runs.config` (JSON). */
export function settingsRecord(
  settings: RunSettings,
  candidates: readonly GpuCandidate[],
): Record<string, unknown> {
  return {
    ...settings,
    candidates: candidates.map(({ id, name, memoryGb, count, pricePerHr }) => ({
      id,
      name,
      memoryGb,
      count,
      pricePerHr,
    })),
  };
}

/**
 * A pod's base URL from the template (`https://{podId}-{port}.proxy.runpod.net`).
 *
 * @example
 *   podUrl('https://{podId}-{port}.proxy.runpod.net', 'abc123') // 'https://abc123-8000.proxy.runpod.net'
 */
export function podUrl(template: string, podId: string, port: number = VLLM_PORT): string {
  return template.replaceAll('{podId}', podId).replaceAll('{port}', String(port)).replace(/\/+$/, '');
}
