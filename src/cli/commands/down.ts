import { rmSync } from 'node:fs';
import { stopDaemon } from '../../daemons/detached-process.js';
import { down, type DownResult } from '../../lifecycle/down.js';
import { gatewayUrlFile } from '../../daemons/gateway-daemon.js';
import { AppError } from '../../shared/errors.js';
import { openState } from '../../state/db.js';
import { listActivePods } from '../../state/pods.js';
import { EXIT } from '../exit-codes.js';
import { type CliIo, line } from '../io.js';
import {
  acquireLockWaiting,
  hasRunPodKey,
  loadManagerContext,
  managerDeps,
  offlineClient,
  runpodClient,
  stateExists,
} from '../manager-context.js';
import type { DownFlags } from '../command-options.js';

/**
 * `runpod-llm down` (also the original Python tool's `0 0 * * * runpod-llm down`): stop the watchdog first (so it
 * does not recreate what we end), terminate — or with `--stop` stop — every pod, clear the routes,
 * then stop the gateway (SIGTERM, up to 10 s for in-flight streams, then SIGKILL). Nothing
 * running is not an error.
 */
export async function runDownCommand(flags: DownFlags, io: CliIo): Promise<number> {
  const ctx = loadManagerContext(io, {}, flags.config);
  const err = (t: string): void => line(io.stderr, t);
  const watchdog = await stopDaemon(ctx.home, 'watchdog');
  if (watchdog !== 'not_running')
    err(
      `watchdog: ${watchdog === 'left_to_service' ? 'left running (a service runs it; `runpod-llm service uninstall` removes it)' : watchdog}`,
    );

  let result: DownResult = { pods: [], endedRunId: null };
  if (stateExists(ctx.home)) {
    // A cron `watch` pass may hold the lock for a moment.
    const release = await acquireLockWaiting(ctx.home, flags.stop === true ? 'down --stop' : 'down', 15_000);
    const state = openState({ home: ctx.home });
    try {
      // Without pods there is nothing to tell RunPod, so no key is needed (cron on a quiet day).
      const api =
        listActivePods(state).length > 0 || hasRunPodKey(io.env)
          ? runpodClient(ctx, io.env)
          : offlineClient();
      result = await down(managerDeps(state, api, io), { stop: flags.stop === true });
    } finally {
      state.close();
      release();
    }
  }

  const gateway = await stopDaemon(ctx.home, 'gateway');
  // A gateway a service manager runs stays, and so does its address.
  if (gateway !== 'left_to_service') rmSync(gatewayUrlFile(ctx.home), { force: true });
  if (gateway !== 'not_running')
    err(
      `gateway: ${gateway === 'left_to_service' ? 'left running (a service runs it; `runpod-llm service uninstall` removes it)' : gateway}`,
    );

  if (flags.json === true) line(io.stdout, JSON.stringify({ ...result, watchdog, gateway }, null, 2));
  else if (result.pods.length === 0) line(io.stdout, 'nothing was running');
  else
    for (const p of result.pods)
      line(
        io.stdout,
        `${p.podId} (${p.name}): ${p.outcome.replace('_', ' ')}${p.error === undefined ? '' : ` — ${p.error}`}`,
      );

  const failed = result.pods.filter((p) => p.outcome === 'failed');
  if (failed.length > 0) {
    const e = new AppError(
      'RUNPOD_UNAVAILABLE',
      `RunPod could not be told to ${flags.stop === true ? 'stop' : 'terminate'} ${failed.map((p) => p.podId).join(', ')}: it may still be billing`,
      {
        hint: 'run `runpod-llm down` again in a minute; check the RunPod console if it keeps failing',
      },
    );
    err(`error: ${e.message}`);
    err(`fix: ${e.hint ?? ''}`);
    return EXIT.RUNPOD_CAPACITY;
  }
  return 0;
}
