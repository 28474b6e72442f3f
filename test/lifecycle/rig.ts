import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, type ConfigInput } from '../../src/config/schema.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/emulator.js';
import type { ManagerDeps } from '../../src/lifecycle/manager-deps.js';
import { type RunSettings, settingsFromConfig } from '../../src/lifecycle/run-settings.js';
import { watchOnce } from '../../src/watchdog/pass.js';
import type { WatchReport } from '../../src/watchdog/report.js';
import { createRunPodClient, type RunPodClient } from '../../src/runpod/client.js';
import { ManualClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openState, type StateDb } from '../../src/state/db.js';

/*
 * Lifecycle in simulated time: the emulator and the manager share a ManualClock; readiness
 * "sleeps" by advancing it, so a 20-minute timeout or a 60-minute runtime limit takes
 * milliseconds. Pods boot in 30 s + 30 s, and the model loads 30 s after RUNNING.
 */

/** Where every lifecycle test's simulated clock starts. */
export const T0 = Date.parse('2026-11-25T09:00:00Z');
export const MIN = 60_000;
export const SCHEDULE = { provisioningMs: 30_000, startingMs: 30_000, loadMs: 30_000 };

export interface LifecycleRig {
  clock: ManualClock;
  emulator: Emulator;
  home: string;
  state: StateDb;
  api: RunPodClient;
  deps: ManagerDeps;
  settings: RunSettings;
  /** Sets the clock to T0 + `minute` minutes and runs one watchdog pass (1-minute interval). */
  passAt(
    minute: number,
    options?: { reap?: boolean; deps?: ManagerDeps; wakeOnRequest?: boolean },
  ): Promise<WatchReport>;
  close(): Promise<void>;
}

export async function startLifecycleRig(
  options: { manager?: NonNullable<ConfigInput['manager']>; emulator?: EmulatorOptions } = {},
): Promise<LifecycleRig> {
  const clock = new ManualClock(T0);
  const emulator = await startEmulator({ clock, schedule: SCHEDULE, ...options.emulator });
  const home = mkdtempSync(join(tmpdir(), 'lifecycle-'));
  const state = openState({ home, clock });
  const api = createRunPodClient({
    baseUrl: emulator.apiUrl,
    apiKey: emulator.apiKey,
    clock,
    sleep: async () => {},
    random: () => 0.5,
  });
  const deps: ManagerDeps = {
    state,
    api,
    clock,
    sleep: async (ms) => {
      clock.advance(ms);
    },
    fetch: globalThis.fetch,
    logger: silentLogger(),
  };
  const settings = settingsFromConfig(
    defaultConfig({
      manager: {
        pod_url_template: emulator.podUrlTemplate,
        readiness_poll: '10s',
        runtime_limit: '60m',
        idle_limit: '15m',
        ...options.manager,
      },
    }).manager,
  );
  return {
    clock,
    emulator,
    home,
    state,
    api,
    deps,
    settings,
    passAt(minute, pass = {}) {
      clock.set(T0 + minute * MIN);
      return watchOnce(pass.deps ?? deps, {
        intervalMs: MIN,
        reap: pass.reap ?? false,
        fallback: settings,
        wakeOnRequest: pass.wakeOnRequest ?? false,
      });
    },
    async close() {
      state.close();
      await emulator.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
