import { cannotStopItself, describeSelfStop } from '../../lifecycle/lease.js';
import { statusData, type StatusData } from '../../doctor/status.js';
import { formatDuration } from '../../shared/duration.js';
import { openState } from '../../state/db.js';
import { limit, usd } from '../format.js';
import { type CliIo, line } from '../io.js';
import {
  hasRunPodKey,
  loadManagerContext,
  runpodClient,
  stateExists,
  systemClock,
} from '../manager-context.js';
import type { StatusFlags } from '../command-options.js';

/**
 * `runpod-llm status [--json]`: pod, status, GPU, $/h, uptime, cost so far, time left, idle
 * time, budget left, gateway URL and health. Asks RunPod when RUNPOD_API_KEY is set, otherwise
 * shows what the state last saw. Takes no lock: it only reads.
 */
export async function runStatusCommand(flags: StatusFlags, io: CliIo): Promise<number> {
  const ctx = loadManagerContext(io, {}, flags.config);
  if (!stateExists(ctx.home)) {
    if (flags.json === true)
      line(io.stdout, JSON.stringify({ home: ctx.home, run: null, pods: [] }, null, 2));
    else line(io.stdout, `nothing has run yet (no state in ${ctx.home}); start with \`runpod-llm up\``);
    return 0;
  }
  const state = openState({ home: ctx.home });
  try {
    const data = await statusData({
      state,
      ...(hasRunPodKey(io.env) ? { api: runpodClient(ctx, io.env) } : {}),
      clock: systemClock,
      fetch: globalThis.fetch,
      fallback: ctx.settings,
    });
    if (flags.json === true) line(io.stdout, JSON.stringify(data, null, 2));
    else printStatus(data, io);
    return 0;
  } finally {
    state.close();
  }
}

/** What an end reason means for the user, where the code alone does not say it. */
const END_REASON_TEXT: Record<string, string> = {
  recreate_limit:
    ' — its pod kept dying and the recreations allowed per run (manager.max_recreations) were used up; see `runpod-llm status --json` recent events and the pod log lines in the audit',
  pod_failed: ' — the pod could not start; `runpod-llm up` printed the cause and the last log lines',
};

function printStatus(d: StatusData, io: CliIo): void {
  const out = (t: string): void => line(io.stdout, t);
  if (d.run === null) {
    out(
      `run       none${d.lastRun === null ? '' : ` (last run ended ${d.lastRun.endedAt ?? '?'}: ${d.lastRun.endReason ?? '?'}${END_REASON_TEXT[d.lastRun.endReason ?? ''] ?? ''})`}`,
    );
  } else {
    const r = d.run;
    out(`run       ${r.runId} since ${r.startedAt}, model ${r.model}`);
    if (r.replicas > 1) out(`replicas  ${r.replicas} pods kept ready`);
    out(
      `limits    runtime ${limit(r.runtimeLimitMs)}${r.runtimeLeftMs === null ? '' : ` (${formatDuration(r.runtimeLeftMs)} left)`}, idle ${limit(r.idleLimitMs)} → ${r.idleAction}, budget ${r.budgetUsd === null ? 'none' : `${usd(r.budgetUsd)} (${usd(r.budgetLeftUsd ?? 0)} left)`}`,
    );
  }
  for (const p of d.pods) {
    out(
      `pod       ${p.podId} (${p.name}) ${p.status}${p.desired === 'running' ? '' : ` [wanted ${p.desired}]`}${p.ready ? ', ready' : ''} on ${p.gpu.count}× ${p.gpu.id} ${p.cloud}, ${usd(p.costPerHr)}/h${p.uptimeMs === null ? '' : `, up ${formatDuration(p.uptimeMs)}`}${p.restarts > 0 ? `, recreated ${p.restarts}×` : ''}, ${p.guard === null ? "UNGUARDED (vLLM's open routes are public)" : `guard v${p.guard}`}`,
    );
    if (p.selfStop !== null && cannotStopItself(p.selfStop)) out(`          ${describeSelfStop(p.selfStop)}`);
  }
  if (d.wake !== null)
    out(
      `wake      requested ${d.wake.requestedAt} (${d.wake.requests} request(s)); the watchdog starts the pod(s)`,
    );
  if (d.pods.length === 0) out('pod       none');
  out(
    `idle      ${d.idle.idleMs === null ? '-' : formatDuration(d.idle.idleMs)} (last request ${d.idle.lastRequestAt ?? 'never'}; ${d.usage.requests} requests, ${d.usage.tokensIn}+${d.usage.tokensOut} tokens)`,
  );
  out(
    `cost      this run ${usd(d.spend.run)}, today ${usd(d.spend.today)}, this month ${usd(d.spend.month)}`,
  );
  out(
    `gateway   ${d.gateway.running ? `${d.gateway.url ?? '?'} (pid ${d.gateway.pid ?? '?'}, health ${d.gateway.health ?? '?'})` : 'not running'}`,
  );
  out(`watchdog  ${d.watchdog.running ? `running (pid ${d.watchdog.pid ?? '?'})` : 'not running'}`);
  out(
    `runpod    ${d.runpod === 'live' ? 'asked now' : d.runpod === 'not_asked' ? 'not asked (RUNPOD_API_KEY not set): last seen statuses' : `unreachable (${d.runpod})`}`,
  );
}
