import type { z } from 'zod';
import { systemClock, type Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { createPodIdempotent, type CreatePodOutcome } from './create-idempotent.js';
import { badResponseError, isRunPodError, RunPodError } from './errors.js';
import { createTransport, realSleep, type RawResponse, type Sleep, type Transport } from './http.js';
import { readPodLogs, type PodLogLine } from './logs.js';
export type { PodLogLine } from './logs.js';
import {
  ListGpuTypesResponseSchema,
  ListPodBillingResponseSchema,
  ListPodsResponseSchema,
  parsePodList,
  PodSchema,
  type SkippedPod,
  type BillingBucketSize,
  type Cloud,
  type CreatePodRequest,
  type GpuType,
  type ListPodBillingResponse,
  type Pod,
  type PodAction,
} from './schemas.js';

export const DEFAULT_RUNPOD_API_URL = 'https://api.runpod.io';

export interface ListGpuTypesOptions {
  /** Adds `availability`/`dataCenters` for pods (`include=AVAILABILITY&product=POD`). */
  includeAvailability?: boolean;
  /** Scopes availability to a cloud (valid only with availability, as the spec says). */
  cloud?: Cloud;
  /** GPU count availability is computed for (default 1; only with availability). */
  count?: number;
}

export interface PodBillingOptions {
  bucketSize?: BillingBucketSize;
  /** RFC 3339. */
  startTime?: string;
  endTime?: string;
}

/**
 * The RunPod REST v2 calls this tool makes. Small on purpose: lifecycle code and tests depend on
 * this interface, not on HTTP.
 */
export interface RunPodApi {
  /** `POST /v2/pods`. Safe against RunPod's "5xx but created" (see {@link createPodIdempotent}). */
  createPod(req: CreatePodRequest): Promise<Pod>;
  /** `GET /v2/pods/{id}`; unknown → RUNPOD_NOT_FOUND. */
  getPod(id: string): Promise<Pod>;
  /**
   * `GET /v2/pods`, unwrapped and read item by item: a pod that cannot be read (a status value
   * the spec does not list, a required field missing) is left out and listed in `skipped`.
   */
  listPods(): Promise<PodList>;
  /**
   * `GET /v2/pods/{id}/logs` (SSE): the backfill (`tail` lines), read for at most `timeLimitMs`
   * and until no line came for `idleMs`. Optional: doubles without it have no logs.
   */
  getPodLogs?(id: string, options?: PodLogOptions): Promise<PodLogLine[]>;
  /** `POST /v2/pods/{id}/action`: the updated pod, or null for terminate (204). */
  podAction(id: string, action: PodAction): Promise<Pod | null>;
  /** `DELETE /v2/pods/{id}` (terminate). */
  deletePod(id: string): Promise<void>;
  /** `GET /v2/catalog/gpus`. */
  listGpuTypes(options?: ListGpuTypesOptions): Promise<GpuType[]>;
  /** `GET /v2/billing/pods`, optionally for one pod. */
  podBilling(podId?: string, options?: PodBillingOptions): Promise<ListPodBillingResponse>;
}

/** A pod list; `skipped`: items that could not be read (when the source says). */
export type PodList = Pod[] & { skipped?: SkippedPod[] };

export interface PodLogOptions {
  source?: 'container' | 'system';
  /** Lines of backfill (default 100, at most 5,000). */
  tail?: number;
  /** Upper bound on the whole read (default 5 s). */
  timeLimitMs?: number;
  /** Stop once no line arrived for this long after the last one (default 700 ms). */
  idleMs?: number;
}

export interface RunPodClientOptions {
  apiKey: string;
  /** Default https://api.runpod.io (config passes RUNPOD_API_URL). */
  baseUrl?: string;
  fetch?: typeof globalThis.fetch;
  clock?: Clock;
  sleep?: Sleep;
  /** Retries after the first attempt for 429/5xx/timeouts (default 3). */
  retries?: number;
  /** Per attempt, including reading the body (default 30 s). */
  timeoutMs?: number;
  /** Longest Retry-After we wait for before failing with RUNPOD_RATE_LIMITED (default 60 s). */
  maxRetryAfterMs?: number;
  /** First backoff step (default 500 ms), doubling up to `backoffMaxMs` (default 8 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Jitter source in [0,1) (default Math.random). */
  random?: () => number;
  logger?: Logger;
  /**
   * After a create that timed out or failed with 5xx, how long the pods are listed by name before
   * any new create (default 45 s; at least 30 s: creates can take tens of seconds, docs/runpod-contract.md).
   */
  createConfirmWindowMs?: number;
  /** Between those lists (default 5 s). */
  createConfirmPollMs?: number;
}

export interface RunPodClient extends RunPodApi {
  /** Like createPod, and also says whether the pod was adopted after a failed create. */
  createPodDetailed(req: CreatePodRequest): Promise<CreatePodOutcome>;
}

/**
 * A typed client for RunPod REST v2. Every response is parsed against the spec's shapes; every
 * failure is a {@link RunPodError} with a stable code, and never carries the API key.
 *
 * @example
 *   const api = createRunPodClient({ apiKey: process.env.RUNPOD_API_KEY ?? '', baseUrl: config.runpodApiUrl });
 *   const pod = await api.createPod({ name: 'runpod-llm-3f9a1c', image: 'vllm/vllm-openai:v0.11.0', gpu: { id: 'NVIDIA GeForce RTX 4090', count: 1 } });
 */
export function createRunPodClient(options: RunPodClientOptions): RunPodClient {
  if (options.apiKey.trim() === '') {
    throw new RunPodError('RUNPOD_AUTH', 'RUNPOD_API_KEY is not set', {
      hint: 'Export RUNPOD_API_KEY (RunPod console → Settings → API Keys); it is read from the environment only.',
    });
  }
  const baseUrl = (options.baseUrl ?? DEFAULT_RUNPOD_API_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(baseUrl)) throw new TypeError(`RunPod base URL must be http(s): ${baseUrl}`);
  const retries = options.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0)
    throw new TypeError(`retries must be an integer >= 0, got ${retries}`);
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(timeoutMs > 0)) throw new TypeError(`timeoutMs must be > 0, got ${timeoutMs}`);
  const logger = options.logger ?? silentLogger();
  const transport: Transport = createTransport({
    baseUrl,
    apiKey: options.apiKey,
    fetch: options.fetch ?? globalThis.fetch,
    clock: options.clock ?? systemClock,
    sleep: options.sleep ?? realSleep,
    retries,
    timeoutMs,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
    backoffBaseMs: options.backoffBaseMs ?? 500,
    backoffMaxMs: options.backoffMaxMs ?? 8_000,
    random: options.random ?? Math.random,
    logger,
  });

  function parse<T>(schema: z.ZodType<T>, raw: RawResponse): T {
    let json: unknown;
    try {
      json = JSON.parse(raw.text);
    } catch {
      throw badResponseError(raw.operation, raw.status, 'the body is not JSON', transport.secrets);
    }
    const result = schema.safeParse(json);
    if (!result.success)
      throw badResponseError(raw.operation, raw.status, result.error.issues, transport.secrets);
    return result.data;
  }

  const podPath = (id: string): string => `/v2/pods/${encodeURIComponent(id)}`;

  const getPod = async (id: string): Promise<Pod> =>
    parse(PodSchema, await transport.call('GET', podPath(id), { retryUncertain: true }));

  // Pods skipped already warned about (bounded): one warning per odd pod, not one per pass.
  const warned = new Set<string>();
  const listPods = async (): Promise<PodList> => {
    const items = parse(
      ListPodsResponseSchema,
      await transport.call('GET', '/v2/pods', { retryUncertain: true }),
    ).pods;
    const { pods, skipped } = parsePodList(items);
    const fresh = skipped.filter((p) => !warned.has(p.id ?? p.name ?? p.reason));
    if (fresh.length > 0) {
      for (const p of fresh) if (warned.size < 1_000) warned.add(p.id ?? p.name ?? p.reason);
      logger.warn(
        { skipped: fresh.map((p) => `${p.id ?? '?'} (${p.name ?? 'no name'}): ${p.reason}`) },
        `RunPod listed ${fresh.length} pod(s) this tool cannot read; skipped (never acted on)`,
      );
    }
    return Object.assign(pods, { skipped });
  };

  async function getPodLogs(id: string, options: PodLogOptions = {}): Promise<PodLogLine[]> {
    const query: Record<string, string | undefined> = { tail: String(options.tail ?? 100) };
    if (options.source !== undefined) query.source = options.source;
    return readPodLogs(transport, `${podPath(id)}/logs`, query, {
      timeLimitMs: options.timeLimitMs ?? 5_000,
      idleMs: options.idleMs ?? 700,
      maxLines: Math.min(options.tail ?? 100, 5_000),
    });
  }

  const createOnce = async (req: CreatePodRequest): Promise<Pod> =>
    parse(PodSchema, await transport.call('POST', '/v2/pods', { body: req, retryUncertain: false }));

  const createPodDetailed = (req: CreatePodRequest): Promise<CreatePodOutcome> =>
    createPodIdempotent(
      {
        createOnce,
        listPods,
        sleep: transport.options.sleep,
        backoffMs: transport.backoffMs,
        retries,
        logger,
        clock: transport.options.clock,
        confirmWindowMs: options.createConfirmWindowMs ?? 45_000,
        confirmPollMs: options.createConfirmPollMs ?? 5_000,
      },
      req,
    );

  async function podAction(id: string, action: PodAction): Promise<Pod | null> {
    const uncertain = { value: false };
    try {
      const raw = await transport.call('POST', `${podPath(id)}/action`, {
        body: { action },
        retryUncertain: true,
        uncertain,
      });
      if (action === 'terminate' || raw.status === 204) return null;
      return parse(PodSchema, raw);
    } catch (err) {
      // A retried action whose first attempt may have been applied: terminate now answers 404
      // (already gone), stop/start/restart 409 (already in the new status). Both mean done.
      if (uncertain.value && action === 'terminate' && isRunPodError(err, 'RUNPOD_NOT_FOUND')) return null;
      if (uncertain.value && action !== 'terminate' && isRunPodError(err, 'RUNPOD_CONFLICT'))
        return getPod(id);
      throw err;
    }
  }

  async function deletePod(id: string): Promise<void> {
    const uncertain = { value: false };
    try {
      await transport.call('DELETE', podPath(id), { retryUncertain: true, uncertain });
    } catch (err) {
      if (uncertain.value && isRunPodError(err, 'RUNPOD_NOT_FOUND')) return;
      throw err;
    }
  }

  async function listGpuTypes(opts: ListGpuTypesOptions = {}): Promise<GpuType[]> {
    const query: Record<string, string | undefined> = {};
    if (opts.includeAvailability === true) {
      // The spec requires `product` with include=AVAILABILITY and rejects cloud/count without it.
      query.include = 'AVAILABILITY';
      query.product = 'POD';
      query.cloud = opts.cloud;
      query.count = opts.count === undefined ? undefined : String(opts.count);
    }
    const raw = await transport.call('GET', '/v2/catalog/gpus', { query, retryUncertain: true });
    return parse(ListGpuTypesResponseSchema, raw).gpus;
  }

  async function podBilling(podId?: string, opts: PodBillingOptions = {}): Promise<ListPodBillingResponse> {
    const query = { podId, bucketSize: opts.bucketSize, startTime: opts.startTime, endTime: opts.endTime };
    const raw = await transport.call('GET', '/v2/billing/pods', { query, retryUncertain: true });
    return parse(ListPodBillingResponseSchema, raw);
  }

  return {
    createPod: async (req) => (await createPodDetailed(req)).pod,
    createPodDetailed,
    getPod,
    listPods,
    getPodLogs,
    podAction,
    deletePod,
    listGpuTypes,
    podBilling,
  };
}

export type { CreatePodOutcome } from './create-idempotent.js';
