import { currentSelf, readDaemon, removePidFile, writeOwnPidFile } from '../../daemons/detached-process.js';
import { type GatewayRevival, reviveGateway } from '../../daemons/gateway-daemon.js';
import type { RunSettings } from '../../lifecycle/run-settings.js';
import { runWatchLoop } from '../../watchdog/loop.js';
import { watchOnce } from '../../watchdog/pass.js';
import type { WatchReport } from '../../watchdog/report.js';
import { parseDuration } from '../../shared/duration.js';
import { AppError, isAppError } from '../../shared/errors.js';
import type { RunPodClient } from '../../runpod/client.js';
import { configuredLogger } from '../../logs/persisted-logger.js';
import type { Config } from '../../config/schema.js';
import { openState, type StateDb } from '../../state/db.js';
import { acquireLock } from '../../state/lock.js';
import { pruneIfDue } from '../../state/retention.js';
import { EXIT } from '../exit-codes.js';
import { type CliIo, line } from '../io.js';
import { loadManagerContext, managerDeps, runpodClient } from '../manager-context.js';
import type { WatchFlags } from '../command-options.js';

/** How soon the loop notices a gateway's wake request between passes. */
const WAKE_POLL_MS = 1_000;

/**
 * `runpod-llm watch`: one watchdog pass (for cron: `*\/5 * * * * runpod-llm watch`), or with
 * `--loop` the daemon `up` starts. `--reap` terminates orphans (pods named runpod-llm-* the
 * state does not know). Exit 5 when RunPod could not be asked or an action failed.
 */
export async function runWatchCommand(flags: WatchFlags, io: CliIo): Promise<number> {
  const ctx = loadManagerContext(
    io,
    flags.interval === undefined ? {} : { 'manager.watch_interval': flags.interval },
    flags.config,
  );
  const intervalMs =
    flags.interval === undefined
      ? ctx.config.manager.watch_interval
      : (parseDuration(flags.interval) ?? ctx.config.manager.watch_interval);
  const api = runpodClient(ctx, io.env);
  const self = io.self ?? currentSelf();
  const options = {
    intervalMs,
    reap: flags.reap === true,
    fallback: ctx.settings,
    wakeOnRequest: ctx.config.wake_on_request,
  };
  // A dead gateway `up` started comes back on the next pass, without the RunPod key.
  const revive = (state: StateDb) => () =>
    reviveGateway(state, { home: ctx.home, host: ctx.config.proxy_host, self, env: io.env });
  if (flags.loop === true)
    return loop(ctx.home, io, api, ctx.config, { ...options, service: flags.service === true, revive });
  if (flags.service === true)
    throw new AppError('CLI_USAGE', '--service goes with --loop', {
      hint: 'runpod-llm watch --loop --service (what `runpod-llm service install` runs)',
    });

  let release;
  try {
    release = acquireLock(ctx.home, flags.reap === true ? 'watch --reap' : 'watch');
  } catch (err) {
    if (!isAppError(err) || err.code !== 'STATE_LOCKED') throw err;
    // Another manager is acting right now (`up`, `down`, the loop's pass): it sees what we would.
    line(io.stderr, `skipped: ${err.message}`);
    return 0;
  }
  const state = openState({ home: ctx.home });
  let report: WatchReport;
  try {
    report = await watchOnce(managerDeps(state, api, io), { ...options, reviveGateway: revive(state) });
    pruneIfDue(state, { now: state.clock.now(), retentionMs: ctx.config.manager.retention });
  } finally {
    state.close();
    release();
  }
  if (flags.json === true) line(io.stdout, JSON.stringify(report, null, 2));
  else printReport(report, io);
  if (report.unreachable !== null || report.actions.some((a) => !a.ok)) return EXIT.RUNPOD_CAPACITY;
  return 0;
}

interface LoopOptions {
  intervalMs: number;
  reap: boolean;
  fallback: RunSettings;
  wakeOnRequest: boolean;
  /** Run by a service manager: keep running with nothing to watch, mark the pid file. */
  service: boolean;
  revive: (state: StateDb) => () => Promise<GatewayRevival | null>;
}

async function loop(
  home: string,
  io: CliIo,
  api: RunPodClient,
  config: Config,
  options: LoopOptions,
): Promise<number> {
  const other = readDaemon(home, 'watchdog');
  if (other !== null && other.running && other.pid !== process.pid) {
    throw new AppError('STATE_LOCKED', `a watchdog loop is already running (pid ${other.pid})`, {
      hint: other.service
        ? 'it runs as a service (`runpod-llm service status`)'
        : '`runpod-llm down` stops it; `runpod-llm status` shows it',
    });
  }
  writeOwnPidFile(home, 'watchdog', { service: options.service });
  const log = configuredLogger(config, { name: 'watchdog' });
  const { logger } = log;
  const state = openState({ home });
  try {
    logger.info(
      {
        home,
        intervalMs: options.intervalMs,
        reap: options.reap,
        pid: process.pid,
        service: options.service,
      },
      'watchdog started',
    );
    // `up` waits for this line on the process's own output (its log file may be elsewhere).
    if (config.log_file !== undefined)
      line(io.stderr, `runpod-llm watchdog started (pid ${process.pid}; log ${config.log_file})`);
    const { revive, service, ...rest } = options;
    const why = await runWatchLoop(managerDeps(state, api, io, logger), {
      ...rest,
      home,
      wakePollMs: WAKE_POLL_MS,
      stay: service,
      reviveGateway: revive(state),
      retentionMs: config.manager.retention,
    });
    logger.info({ why }, 'watchdog stopped');
    return 0;
  } finally {
    state.close();
    if (readDaemon(home, 'watchdog')?.pid === process.pid) removePidFile(home, 'watchdog');
    await log.close();
  }
}

function printReport(r: WatchReport, io: CliIo): void {
  const out = (t: string): void => line(io.stdout, t);
  if (r.unreachable !== null) out(`RunPod unreachable: nothing done (${r.unreachable})`);
  for (const a of r.actions) {
    if (a.action.type === 'report_orphan' || a.action.type === 'noop_unreachable') continue;
    out(
      `${a.ok ? '' : 'FAILED '}${a.action.type}${'podId' in a.action ? ` ${a.action.podId}` : ''}${'reason' in a.action ? ` (${a.action.reason})` : ''}${a.note === undefined ? '' : `: ${a.note}`}`,
    );
  }
  for (const o of r.orphans) {
    if (o.otherInstall === true)
      out(
        `other install ${o.podId} (${o.name}): a runpod-llm pod another machine (or state directory) created on this account — not reaped from here; stop it there, or in the RunPod console`,
      );
    else
      out(
        `orphan ${o.podId} (${o.name}): a runpod-llm pod the state does not know${r.actions.some((a) => a.action.type === 'terminate' && a.action.podId === o.podId) ? '' : ' — `runpod-llm watch --reap` terminates it'}`,
      );
  }
  if (r.actions.length === 0 && r.unreachable === null && r.orphans.length === 0) {
    out(
      r.runActive
        ? `ok: nothing to do${r.pending > 0 ? ` (${r.pending} pod(s) starting)` : ''}`
        : 'ok: no active run',
    );
  }
}
