import type { Clock } from '../shared/clock.js';

/* What every doctor check returns, and what the checks are given. */

/** The outcome of one check. */
export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  id: string;
  status: CheckStatus;
  summary: string;
  fix?: string;
  /** Measured values (never a secret). */
  data?: Record<string, unknown>;
}

export interface DoctorDeps {
  fetch: typeof globalThis.fetch;
  clock: Clock;
  /** Per RunPod request (default 10 s). */
  timeoutMs?: number;
}

export interface DoctorOptions {
  home: string;
  apiUrl: string;
  /** RUNPOD_API_KEY; undefined or empty: the RunPod checks fail with the fix. */
  apiKey: string | undefined;
  /** The configured GPU type ids (checked against the catalog). */
  gpuTypes: readonly string[];
}
