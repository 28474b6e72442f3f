import { AppError } from '../shared/errors.js';
import { listActivePods, type PodRow } from '../state/pods.js';
import { listReadyRoutes } from '../state/routes.js';
import { activeRun, type RunRow } from '../state/runs.js';
import type { ManagerDeps } from './manager-deps.js';
import { type ResumeResult, resumeRun } from './resume.js';
import { type RunSettings, settingsOfRun } from './run-settings.js';
import { up, type UpEvents, type UpResult } from './up.js';

/**
 * What `runpod-llm up` did: a run already serving was reattached to, a stopped one resumed, or
 * a new one started. `settings` are the ones the run serves with (an existing run keeps the
 * settings it started with).
 */
export type BringUpOutcome =
  | { kind: 'reattached'; settings: RunSettings; run: RunRow; pods: PodRow[] }
  | { kind: 'resumed'; settings: RunSettings; result: ResumeResult }
  | { kind: 'started'; settings: RunSettings; result: UpResult };

export interface BringUpOptions extends UpEvents {
  /** The model the user asked for by flag: refused when an active run serves another one. */
  requestedModel?: string | undefined;
  /** The settings the run will use, before any work (the CLI warns about an unguarded recipe). */
  onSettings?: (settings: RunSettings) => void;
  /** Before a new run pays for a pod (the CLI checks the gateway's port here). */
  beforeStart?: () => Promise<void>;
}

/**
 * `up` with what is already there: an active run whose pods are all stopped is resumed; one with
 * a ready route is reattached to (nothing changes); one still starting is refused
 * (`STATE_RUN_ACTIVE`: the watchdog routes it). Otherwise — no run, or a stopped run whose
 * runtime is used up — a new run is started. The caller holds the manager lock.
 *
 * @example
 *   const outcome = await bringUp(deps, ctx.settings, { requestedModel: flags.model, onStep });
 *   if (outcome.kind === 'reattached') print(`already up: ${outcome.pods[0]?.podId}`);
 */
export async function bringUp(
  deps: ManagerDeps,
  settings: RunSettings,
  options: BringUpOptions = {},
): Promise<BringUpOutcome> {
  const { state } = deps;
  const { requestedModel, onSettings, beforeStart, ...events } = options;
  const run = activeRun(state);
  const pods = run === undefined ? [] : listActivePods(state, run.runId);
  if (run !== undefined && pods.length > 0) {
    const runSettings = settingsOfRun(run.config, settings);
    if (requestedModel !== undefined && requestedModel !== runSettings.model) {
      throw new AppError('STATE_RUN_ACTIVE', `a run serving ${runSettings.model} is active`, {
        hint: 'end it with `runpod-llm down`, then `runpod-llm up --model ...`',
      });
    }
    // The run keeps the recipe it started with.
    onSettings?.(runSettings);
    if (pods.every((p) => p.desired === 'stopped')) {
      const resumed = await resumeRun(deps, run, runSettings, events);
      // null: the stopped run had used up its runtime and was ended; a new one starts below.
      if (resumed !== null) return { kind: 'resumed', settings: runSettings, result: resumed };
    } else if (listReadyRoutes(state).length > 0) {
      return { kind: 'reattached', settings: runSettings, run, pods };
    } else {
      throw new AppError(
        'STATE_RUN_ACTIVE',
        `a run is active but its pod is not ready yet (${pods.map((p) => `${p.podId} ${p.status}`).join(', ')})`,
        {
          hint: 'wait for the watchdog to route it (`runpod-llm status`), or end it with `runpod-llm down`',
        },
      );
    }
  }
  await beforeStart?.();
  onSettings?.(settings);
  return { kind: 'started', settings, result: await up(deps, settings, events) };
}
