import type { RunPodClient } from '../runpod/client.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Sleep } from '../shared/sleep.js';
import type { StateDb } from '../state/db.js';

/*
 * What the lifecycle effects (`up`, `down`, the watchdog) act through. Injected, so tests run
 * them against the emulator in simulated time (a ManualClock and a sleep that advances it).
 */

/** What `up`, `down` and the watchdog act through; injected, so tests run them against the emulator in simulated time. */
export interface ManagerDeps {
  state: StateDb;
  api: RunPodClient;
  clock: Clock;
  sleep: Sleep;
  /** For readiness probes through the pod URL. */
  fetch: typeof globalThis.fetch;
  logger: Logger;
  /** Aborts long waits (readiness) on SIGINT/SIGTERM. */
  signal?: AbortSignal;
  /** HF_TOKEN from the environment, for gated models; never logged, never stored. */
  hfToken?: string;
}
