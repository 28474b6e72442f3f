import { type PurgeReport, purgeCache, purgeLogs, purgeRedisCache, purgeRuns } from '../../doctor/purge.js';
import { AppError } from '../../shared/errors.js';
import { systemClock } from '../../shared/clock.js';
import { openState } from '../../state/db.js';
import { type CliIo, line } from '../io.js';
import { acquireLockWaiting, loadManagerContext, stateExists } from '../manager-context.js';
import type { PurgeFlags } from '../command-options.js';

function mb(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * `runpod-llm purge [--logs] [--cache] [--runs] [--all] [--dry-run] [--json]`: removes what the
 * tool keeps (src/doctor/purge.ts) and says what went. One of the four is required: nothing is
 * removed by a bare `purge`.
 */
export async function runPurgeCommand(flags: PurgeFlags, io: CliIo): Promise<number> {
  const all = flags.all === true;
  const what = {
    logs: all || flags.logs === true,
    cache: all || flags.cache === true,
    runs: all || flags.runs === true,
  };
  if (!what.logs && !what.cache && !what.runs) {
    throw new AppError('CLI_USAGE', 'purge needs to be told what to remove', {
      hint: 'runpod-llm purge --logs | --cache | --runs | --all (add --dry-run to see first)',
    });
  }
  const ctx = loadManagerContext(io, {}, flags.config);
  const dryRun = flags.dryRun === true;
  const report: PurgeReport = { dryRun };
  if (what.logs) report.logs = purgeLogs(ctx.home, ctx.config, dryRun);
  if (what.cache) {
    report.cache = purgeCache(ctx.home, ctx.config, dryRun);
    const shared = await purgeRedisCache(ctx.config, dryRun);
    if (shared !== undefined) report.redisCache = shared;
  }
  if (what.runs) {
    if (!stateExists(ctx.home)) report.runs = { note: 'no state yet: nothing to remove' };
    else {
      const release = await acquireLockWaiting(ctx.home, 'purge', 15_000);
      const state = openState({ home: ctx.home });
      try {
        report.runs = purgeRuns(state, systemClock, dryRun);
      } finally {
        state.close();
        release();
      }
    }
  }

  if (flags.json === true) {
    line(io.stdout, JSON.stringify(report, null, 2));
    return 0;
  }
  const verb = dryRun ? 'would remove' : 'removed';
  const out = (t: string): void => line(io.stdout, t);
  if (report.logs !== undefined) {
    const { removed, emptied, bytes } = report.logs;
    if (removed.length + emptied.length === 0) out('logs: nothing to remove');
    else {
      out(
        `logs: ${verb} ${removed.length} file(s)${emptied.length > 0 ? `, ${dryRun ? 'would empty' : 'emptied'} ${emptied.length} in use` : ''} (${mb(bytes)})`,
      );
      for (const f of removed) out(`  ${f}`);
      for (const f of emptied) out(`  ${f} (in use: emptied)`);
    }
  }
  if (report.cache !== undefined) {
    const c = report.cache;
    out(
      c.dir === null || c.removed === 0
        ? `cache: nothing to remove${c.note === undefined ? '' : ` (${c.note})`}`
        : `cache: ${verb} ${c.removed} entr${c.removed === 1 ? 'y' : 'ies'} (${mb(c.bytes)}) from ${c.dir}${c.note === undefined ? '' : `; ${c.note}`}`,
    );
  }
  if (report.redisCache !== undefined) {
    const r = report.redisCache;
    out(
      r.removed === 0
        ? `shared cache (Redis ${r.url}): nothing to remove`
        : `shared cache (Redis ${r.url}): ${verb} ${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} (${mb(r.bytes)})`,
    );
  }
  if (report.runs !== undefined) {
    const r = report.runs;
    if (!('runs' in r)) out(`runs: ${r.note}`);
    else
      out(
        `runs: ${verb} ${r.runs} ended run(s), ${r.pods} pod(s), ${r.routes} route(s), ${r.audit} audit line(s), ${r.spend} spend row(s), ${r.usage} usage row(s), ${r.wake} wake request(s); ${r.note}${r.stateBytes === undefined ? '' : `; state file ${mb(r.stateBytes.before)} → ${mb(r.stateBytes.after)}`}`,
      );
  }
  return 0;
}
