import { z } from 'zod';

/**
 * Fault injection for the RunPod emulator: the failures the live API and pods are known to
 * produce (docs/runpod-contract.md), switched on by tests in-process or by a separate CLI process through
 * `POST /_emulator/faults` (same bearer key as the API). Counted faults (`times`) fire that many
 * times and then switch themselves off, so a test can say "the next create fails once".
 */

/** The detail RunPod was observed to send when a GPU type has no free machine (docs/runpod-contract.md, Errors). */
export const NO_CAPACITY_DETAIL =
  'There are no longer any instances available with the requested specifications. Please refresh and try again.';

const times = z.number().int().min(1);

export const FaultSettingsSchema = z.strictObject({
  /** GPU type ids whose create answers the no-capacity 400; `"*"` means every type. */
  noCapacity: z.array(z.string()),
  /** Creates answer `status`; with `createPod` the pod is created anyway (seen on the live API). */
  createFailure: z
    .strictObject({ status: z.number().int().min(500).max(599), createPod: z.boolean(), times })
    .nullable(),
  /** Creates answer 402 (insufficient balance). */
  insufficientBalance: z.boolean(),
  /**
   * Delay API responses by `delayMs` after the work is done (so a client that times out on a
   * create still leaves a pod behind). `match` is a "METHOD /path-prefix" filter; `times` null = always.
   */
  slow: z
    .strictObject({ delayMs: z.number().int().min(0), times: times.nullable(), match: z.string().optional() })
    .nullable(),
  /** The next `times` API requests answer 429 with `Retry-After: retryAfterS`. */
  rateLimit: z.strictObject({ times, retryAfterS: z.number().int().min(0) }).nullable(),
  /** The next N start/restart actions come back RUNNING with zero GPUs (capacity moved). */
  zeroGpusOnStart: z.number().int().min(0),
  /** Stand-ins never load: the pod URL answers 502 for ever (model too big, crash loop…). */
  standinNeverLoads: z.boolean(),
  /** Every vLLM start crashes before the model loads (a model that cannot load: a crash loop). */
  crashLoop: z.boolean(),
  /** Overrides the schedule's load time (ms after RUNNING until the stand-in answers). */
  standinLoadDelayMs: z.number().int().min(0).nullable(),
  /**
   * How RunPod v2 treats the JSON start-command form `{"entrypoint":[...],"cmd":[...]}` in `args`
   * (docs/runpod-contract.md, "Start-command forms"): `json` honours it (entrypoint and
   * command replaced); `plain` passes the text as plain arguments to the image's entrypoint, so
   * `vllm serve` fails with argparse's `unrecognized arguments` and the container crash-loops.
   */
  argsMode: z.enum(['json', 'plain']),
  /**
   * What happens when a container's main process exits: `restart` (the live behaviour, docs/runpod-contract.md:
   * restarted in place, status stays RUNNING, uptime resets, a `start container` system line per
   * start) or `exit` (the pod becomes EXITED, as the spec's status list suggests).
   */
  onExit: z.enum(['restart', 'exit']),
  /** Whether a pod-scoped key (RUNPOD_API_KEY inside the pod) may stop its own pod (403 when false). */
  podKeyCanStop: z.boolean(),
  /**
   * The next `times` creates are held `delayMs` (wall time) before the pod exists and the answer
   * is sent: a client that times out earlier must find the pod by name later, not create another.
   */
  slowCreate: z.strictObject({ delayMs: z.number().int().min(0), times: times.nullable() }).nullable(),
});
export type FaultSettings = z.infer<typeof FaultSettingsSchema>;

/** What `POST /_emulator/faults` accepts: any subset of the settings, plus one-shot events. */
export const FaultRequestSchema = FaultSettingsSchema.partial().extend({
  /** Reset every setting to "no faults" before applying the rest. */
  reset: z.boolean().optional(),
  /** The pod's container dies now. */
  podDies: z.strictObject({ podId: z.string(), status: z.enum(['EXITED', 'ERROR']) }).optional(),
  /** The pod's vLLM engine dies (`/health` 503) or recovers. */
  podHealth: z.strictObject({ podId: z.string(), healthy: z.boolean() }).optional(),
  /**
   * The pod's main process exits now (out of memory, CUDA error…); with `loop` every later start
   * crashes too, before the model loads (a model that cannot load: a crash loop).
   */
  podCrash: z.strictObject({ podId: z.string(), loop: z.boolean().optional() }).optional(),
  /** Adds this many pods of another tool to the account, with values the spec does not list. */
  foreignPods: z.number().int().min(1).max(20).optional(),
});

export function noFaults(): FaultSettings {
  return {
    noCapacity: [],
    createFailure: null,
    insufficientBalance: false,
    slow: null,
    rateLimit: null,
    zeroGpusOnStart: 0,
    standinNeverLoads: false,
    standinLoadDelayMs: null,
    crashLoop: false,
    argsMode: 'json',
    onExit: 'restart',
    podKeyCanStop: true,
    slowCreate: null,
  };
}

/**
 * The live fault settings plus the bookkeeping of counted faults.
 *
 * @example
 *   emulator.faults.set({ createFailure: { status: 500, createPod: true, times: 1 } });
 */
export class Faults {
  readonly #initial: FaultSettings;
  #settings: FaultSettings;

  /** `initial`: the emulator's behaviour switches (args mode, exit behaviour…) that reset() returns to. */
  constructor(initial: Partial<FaultSettings> = {}) {
    const parsed = FaultSettingsSchema.safeParse({ ...noFaults(), ...initial });
    if (!parsed.success)
      throw new TypeError(
        `invalid emulator setting ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
      );
    this.#initial = parsed.data;
    this.#settings = structuredClone(this.#initial);
  }

  get settings(): Readonly<FaultSettings> {
    return this.#settings;
  }

  /** Merges a subset of settings (validated: a bad value throws a TypeError naming it). */
  set(partial: Partial<FaultSettings>): void {
    const merged = FaultSettingsSchema.safeParse({ ...this.#settings, ...partial });
    if (!merged.success) {
      const issue = merged.error.issues[0];
      throw new TypeError(`invalid fault ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    this.#settings = merged.data;
  }

  /** Back to the emulator's starting settings (its behaviour switches kept, every fault off). */
  reset(): void {
    this.#settings = structuredClone(this.#initial);
  }

  isNoCapacity(gpuId: string): boolean {
    return this.#settings.noCapacity.includes('*') || this.#settings.noCapacity.includes(gpuId);
  }

  /** The create failure to answer now, if one is armed (counts it down). */
  takeCreateFailure(): { status: number; createPod: boolean } | undefined {
    const f = this.#settings.createFailure;
    if (f === null) return undefined;
    this.#settings.createFailure = f.times > 1 ? { ...f, times: f.times - 1 } : null;
    return { status: f.status, createPod: f.createPod };
  }

  /** Retry-After seconds when this request must answer 429. */
  takeRateLimit(): number | undefined {
    const f = this.#settings.rateLimit;
    if (f === null) return undefined;
    this.#settings.rateLimit = f.times > 1 ? { ...f, times: f.times - 1 } : null;
    return f.retryAfterS;
  }

  /** Delay for this response, in ms (0 = none). */
  takeSlow(method: string, path: string): number {
    const f = this.#settings.slow;
    if (f === null) return 0;
    if (f.match !== undefined && !`${method} ${path}`.startsWith(f.match)) return 0;
    if (f.times !== null) this.#settings.slow = f.times > 1 ? { ...f, times: f.times - 1 } : null;
    return f.delayMs;
  }

  /** Wall-clock delay before this create happens, in ms (0 = none). */
  takeSlowCreate(): number {
    const f = this.#settings.slowCreate;
    if (f === null) return 0;
    if (f.times !== null) this.#settings.slowCreate = f.times > 1 ? { ...f, times: f.times - 1 } : null;
    return f.delayMs;
  }

  takeZeroGpus(): boolean {
    if (this.#settings.zeroGpusOnStart <= 0) return false;
    this.#settings.zeroGpusOnStart -= 1;
    return true;
  }
}
