import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { ManagerDeps } from '../lifecycle/manager-deps.js';
import { type RunSettings, settingsFromConfig } from '../lifecycle/run-settings.js';
import { createRunPodClient, type RunPodClient } from '../runpod/client.js';
import { RunPodError } from '../runpod/errors.js';
import { systemClock } from '../shared/clock.js';
import { isAppError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { realSleep } from '../shared/sleep.js';
import { acquireLock, type Release } from '../state/lock.js';
import { STATE_FILE, type StateDb } from '../state/db.js';
import { requireConfig } from './config-problems.js';
import type { CliIo } from './io.js';

/*
 * What every manager command starts from: the configuration (file + environment + flags), the
 * home, the settings a new run would get, and — only when a command needs RunPod — the client.
 */

/** The configuration, home and run settings a manager command starts from, and the RunPod client when it needs one. */
export interface ManagerContext {
  config: Config;
  home: string;
  settings: RunSettings;
  /** The config file read, if any (handed to the daemons so they read the same one). */
  file: string | undefined;
}

export function loadManagerContext(
  io: CliIo,
  flags: Record<string, unknown> = {},
  configPath?: string,
): ManagerContext {
  const result = loadConfig({ env: io.env, flags, ...(configPath === undefined ? {} : { configPath }) });
  const config = requireConfig(result, io);
  const home = config.home as string;
  return { config, home, settings: settingsFromConfig(config.manager), file: result.file };
}

/** The RunPod client; RUNPOD_API_KEY comes from the environment only and is never printed. */
export function runpodClient(
  ctx: ManagerContext,
  env: NodeJS.ProcessEnv,
  logger: Logger = silentLogger(),
): RunPodClient {
  const apiKey = env.RUNPOD_API_KEY ?? '';
  if (apiKey.trim() === '') {
    throw new RunPodError('RUNPOD_AUTH', 'RUNPOD_API_KEY is not set', {
      hint: 'export RUNPOD_API_KEY=... (RunPod console → Settings → API Keys); it is read from the environment only. No account? `runpod-llm demo` runs everything locally',
    });
  }
  return createRunPodClient({ apiKey, baseUrl: ctx.config.manager.runpod_api_url, logger });
}

/** A client for commands that need no RunPod call: any call fails as a missing key would. */
export function offlineClient(): RunPodClient {
  const fail = async (): Promise<never> => {
    throw new RunPodError('RUNPOD_AUTH', 'RUNPOD_API_KEY is not set', {
      hint: 'export RUNPOD_API_KEY=... (it is read from the environment only)',
    });
  };
  return {
    createPod: fail,
    createPodDetailed: fail,
    getPod: fail,
    listPods: fail,
    podAction: fail,
    deletePod: fail,
    listGpuTypes: fail,
    podBilling: fail,
  };
}

export function hasRunPodKey(env: NodeJS.ProcessEnv): boolean {
  return (env.RUNPOD_API_KEY ?? '').trim() !== '';
}

export function managerDeps(
  state: StateDb,
  api: RunPodClient,
  io: CliIo,
  logger: Logger = silentLogger(),
): ManagerDeps {
  const hfToken = io.env.HF_TOKEN;
  return {
    state,
    api,
    clock: systemClock,
    sleep: realSleep,
    fetch: globalThis.fetch,
    logger,
    signal: io.signal,
    ...(hfToken === undefined || hfToken === '' ? {} : { hfToken }),
  };
}

export function stateExists(home: string): boolean {
  return existsSync(join(home, STATE_FILE));
}

/**
 * The manager lock, waiting up to `waitMs` for a holder that is about to finish (a cron
 * `watch` pass) before giving up with STATE_LOCKED.
 */
export async function acquireLockWaiting(home: string, command: string, waitMs: number): Promise<Release> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return acquireLock(home, command);
    } catch (err) {
      if (!isAppError(err) || err.code !== 'STATE_LOCKED' || Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** The environment the daemons inherit, pointed at the same home and config file. */
export function daemonEnv(ctx: ManagerContext, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...env,
    RUNPOD_LLM_HOME: ctx.home,
    ...(ctx.file === undefined ? {} : { RUNPOD_LLM_CONFIG: ctx.file }),
  };
}

export { systemClock };
