import { type ResolvedKeys, resolveGatewayKeys } from '../../gateway/gateway-keys.js';
import { currentSelf, readDaemon } from '../../daemons/detached-process.js';
import { bringUp } from '../../lifecycle/bring-up.js';
import { ensureGateway, reservePort } from '../../daemons/gateway-daemon.js';
import { ensureWatchdog } from '../../daemons/watchdog-daemon.js';
import type { ReadinessProgress } from '../../lifecycle/readiness.js';
import { UNGUARDED_WARNING } from '../../lifecycle/create-request.js';
import { planUp, type UpPlan } from '../../lifecycle/up.js';
import { formatDuration } from '../../shared/duration.js';
import { openState } from '../../state/db.js';
import { acquireLock } from '../../state/lock.js';
import { limit, progressPrinter, usd } from '../format.js';
import { ideSnippet } from '../ide-snippets.js';
import { type CliIo, line } from '../io.js';
import { daemonEnv, loadManagerContext, managerDeps, runpodClient } from '../manager-context.js';
import type { UpFlags } from '../command-options.js';

/**
 * `runpod-llm up`: plan → create → readiness → route → watchdog and gateway → endpoint, key and
 * IDE snippet. Progress goes to stderr, the result to stdout. A run already up is reattached
 * (its daemons started again if needed); a stopped one is resumed.
 */
export async function runUpCommand(flags: UpFlags, io: CliIo): Promise<number> {
  const ctx = loadManagerContext(
    io,
    {
      'manager.model': flags.model,
      'manager.gpu_types': flags.gpu,
      'manager.min_vram_gb': flags.minVram,
      'manager.cloud': flags.cloud,
      'manager.runtime_limit': flags.runtime,
      'manager.idle_limit': flags.idle,
      'manager.idle_action': flags.idleAction,
      'manager.budget_usd': flags.budget,
      'manager.readiness_timeout': flags.readinessTimeout,
      'manager.replicas': flags.replicas,
      'manager.guard': flags.unguarded === true ? false : undefined,
      'manager.vllm_image': flags.image,
    },
    flags.config,
  );
  const err = (text: string): void => line(io.stderr, text);
  let warned = false;
  const warnIfUnguarded = (settings: { guarded: boolean }): void => {
    if (settings.guarded || warned) return;
    warned = true;
    err(UNGUARDED_WARNING);
  };
  const api = runpodClient(ctx, io.env);

  if (flags.dryRun === true) {
    warnIfUnguarded(ctx.settings);
    const plan = await planUp(api, ctx.settings);
    if (flags.json === true) line(io.stdout, JSON.stringify(planJson(plan), null, 2));
    else printPlan(plan, io);
    return 0;
  }

  const wantGateway = flags.gateway !== false;
  const release = acquireLock(ctx.home, 'up');
  let model = ctx.settings.servedModelName;
  let state;
  try {
    state = openState({ home: ctx.home });
    const deps = managerDeps(state, api, io);
    const progress = progressPrinter(io);
    const events = {
      onStep: (t: string) => err(t),
      onProgress: (p: ReadinessProgress) => progress.update(p),
    };
    const outcome = await bringUp(deps, ctx.settings, {
      ...events,
      requestedModel: flags.model,
      onSettings: warnIfUnguarded,
      onPlan: (plan) => printPlan(plan, io),
      // Check the gateway port before paying for a pod that could then not be served.
      beforeStart: async () => {
        if (wantGateway && readDaemon(ctx.home, 'gateway')?.running !== true && ctx.config.proxy_port !== 0) {
          await reservePort(ctx.config.proxy_host, ctx.config.proxy_port);
        }
      },
    });
    progress.done();
    model = outcome.settings.servedModelName;
    if (outcome.kind === 'resumed') {
      const resumed = outcome.result;
      err(
        `ready after ${formatDuration(resumed.readyAfterMs)}: pod ${resumed.pods.map((p) => p.podId).join(', ')} ${resumed.replaced ? 'replaced the stopped one' : 'resumed'}`,
      );
    } else if (outcome.kind === 'reattached') {
      err(
        `already up: pod ${outcome.pods.map((p) => p.podId).join(', ')} serves ${model} (run ${outcome.run.runId})`,
      );
    } else {
      const result = outcome.result;
      const settings = outcome.settings;
      err(
        `ready after ${formatDuration(result.readyAfterMs)}: ${result.baseUrl.replace(/\/v1$/, '')} serves ${model}${settings.guarded ? ' (behind the guard)' : ' (UNGUARDED)'}`,
      );
      if (settings.replicas > 1) {
        err(
          `replicas: ${result.pods.length} of ${settings.replicas} ready (${result.pods.map((p) => p.podId).join(', ')})${result.missing > 0 ? '; the watchdog creates the rest' : ''}`,
        );
      }
    }
  } finally {
    state?.close();
    release();
  }

  const env = daemonEnv(ctx, io.env);
  const self = io.self ?? currentSelf();
  // Generated here, before the gateway starts, so the gateway finds it in the file and never
  // writes it to its log ("shown once" is this command's stdout).
  const keys = wantGateway ? resolveGatewayKeys(ctx.config) : undefined;
  // Both start in parallel (each is a node process start-up); the watchdog matters most.
  const [watchdog, gateway] = await Promise.allSettled([
    flags.watchdog === false
      ? Promise.resolve(undefined)
      : ensureWatchdog({ home: ctx.home, self, env, intervalMs: ctx.config.manager.watch_interval }),
    wantGateway
      ? ensureGateway({
          home: ctx.home,
          host: ctx.config.proxy_host,
          port: ctx.config.proxy_port,
          https: ctx.config.use_https,
          self,
          env,
        })
      : Promise.resolve(undefined),
  ]);
  if (watchdog.status === 'rejected') throw watchdog.reason;
  if (watchdog.value === undefined)
    err(
      'watchdog: not started (--no-watchdog): run `runpod-llm watch` from cron, e.g. */5 * * * * runpod-llm watch',
    );
  else
    err(
      `watchdog: ${watchdog.value.reused ? 'already running' : 'started'} (pid ${watchdog.value.pid}, a pass every ${formatDuration(ctx.config.manager.watch_interval)}; log ${watchdog.value.log})`,
    );
  if (gateway.status === 'rejected') throw gateway.reason;
  if (gateway.value === undefined || keys === undefined) {
    err('gateway: not started (--no-gateway): `runpod-llm gateway` serves the routes from the state');
    return 0;
  }
  err(
    `gateway: ${gateway.value.reused ? 'already running' : 'started'} (pid ${gateway.value.pid}; log ${gateway.value.log})`,
  );
  printEndpoint(io, gateway.value.url, model, keys);
  return 0;
}

function printEndpoint(io: CliIo, baseUrl: string, model: string, keys: ResolvedKeys): void {
  const out = (t = ''): void => line(io.stdout, t);
  const key =
    keys.source === 'configured'
      ? '<your GATEWAY_API_KEYS key>'
      : keys.source === 'none'
        ? 'none (auth off)'
        : (keys.keys[0] ?? '');
  out();
  out(`Endpoint:    ${baseUrl}`);
  out(`Model:       ${model}`);
  out(`Gateway key: ${key}${keys.file === undefined ? '' : `  (stored 0600 in ${keys.file})`}`);
  out();
  out('IDE (Continue, ~/.continue/config.yaml):');
  for (const l of ideSnippet('continue', { baseUrl, apiKey: key, model }).split('\n').slice(1)) out(`  ${l}`);
  out();
  out('Other clients: runpod-llm ide-config codegpt|kilo|openai-env');
  out('Status: runpod-llm status    Stop: runpod-llm down');
}

function printPlan(plan: UpPlan, io: CliIo): void {
  const s = plan.settings;
  const err = (t: string): void => line(io.stderr, t);
  const first = plan.candidates[0];
  if (first === undefined) return;
  err(
    `plan: ${s.model} on ${first.count}× ${first.id} (${first.memoryGb} GB, ${s.cloud}) at ${usd(first.pricePerHr)}/h`,
  );
  if (plan.candidates.length > 1)
    err(
      `      then, on no capacity: ${plan.candidates
        .slice(1, 4)
        .map((c) => `${c.id} ${usd(c.pricePerHr)}/h`)
        .join(', ')}${plan.candidates.length > 4 ? ', …' : ''}`,
    );
  if (s.replicas > 1)
    err(
      `      replicas: ${s.replicas} pods, the gateway spreads requests over them; the worst case counts all of them`,
    );
  err(
    `      limits: runtime ${limit(s.runtimeLimitMs)}, idle ${limit(s.idleLimitMs)} → ${s.idleAction}, budget ${s.budgetUsd === null ? 'none' : usd(s.budgetUsd)}; readiness timeout ${formatDuration(s.readinessTimeoutMs)}`,
  );
  err(
    `      worst case: ${plan.worstCase.usd === null ? 'unbounded (no runtime limit and no budget)' : `${usd(plan.worstCase.usd)} (bound by the ${plan.worstCase.boundBy})`}`,
  );
  for (const w of plan.warnings) err(`      warning: ${w}`);
  for (const s2 of plan.skipped) err(`      skipped ${s2.id}: ${s2.reason}`);
}

function planJson(plan: UpPlan): Record<string, unknown> {
  const s = plan.settings;
  return {
    model: s.model,
    servedModelName: s.servedModelName,
    image: s.image,
    cloud: s.cloud,
    gpu: plan.candidates[0] ?? null,
    fallbacks: plan.candidates.slice(1),
    skipped: plan.skipped,
    warnings: plan.warnings,
    replicas: s.replicas,
    guarded: s.guarded,
    limits: {
      runtimeLimitMs: s.runtimeLimitMs,
      idleLimitMs: s.idleLimitMs,
      idleAction: s.idleAction,
      budgetUsd: s.budgetUsd,
      readinessTimeoutMs: s.readinessTimeoutMs,
    },
    worstCase: plan.worstCase,
  };
}
