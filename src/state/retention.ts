import { appendAudit } from './audit.js';
import type { StateDb } from './db.js';
import { MARKER_TABLE } from './migrations.js';
import { GLOBAL_USAGE_SCOPE } from './usage.js';
import { utcDayStart } from './spend.js';

/*
 * Retention of the state's history: nothing in the state grows without bound.
 *
 * Older than `retentionMs` (`manager.retention`, default 400 days: a year of monthly budgets
 * plus margin) go: audit rows, spend rows (per pod per UTC day), ended runs whose pods have all
 * ended, with those pods and their routes; cleared wake requests and the usage rows of routes
 * that no longer exist go at once. Never touched: a run that has not ended, the newest run (a
 * gateway's request may wake it again, keeping its budget), their pods and spend, and anything
 * of a pod that has not ended. So `status` and the budgets — this run, today, this month — read
 * the same totals before and after a prune.
 */

export const DAY_MS = 86_400_000;

export interface PruneCounts {
  /** Rows older than this were pruned (ISO time). */
  before: string;
  audit: number;
  spend: number;
  runs: number;
  pods: number;
  routes: number;
  usage: number;
  wake: number;
}

/** Where the time of the last prune is kept (the marker table holds key/value pairs). */
const LAST_PRUNE_KEY = 'pruned_at';

/** The runs whose rows are never pruned: every run not ended, and (unless purging) the newest run. */
function protectedRuns(keepNewest: boolean): string {
  const active = 'SELECT run_id FROM runs WHERE ended_at IS NULL';
  return keepNewest
    ? `${active} UNION SELECT run_id FROM (SELECT run_id FROM runs ORDER BY started_at DESC, run_id LIMIT 1)`
    : active;
}

export interface PruneOptions {
  now: number;
  retentionMs: number;
  /** Spend rows of UTC days from this one on stay whatever the retention (purge keeps the month's, for the budgets). */
  keepSpendFrom?: number;
  /** Keep the newest run even when it ended (default true: a gateway's request may wake it). */
  keepNewestRun?: boolean;
  /** Count what would go and change nothing. */
  dryRun?: boolean;
}

class DryRun extends Error {
  constructor(readonly counts: PruneCounts) {
    super('dry run');
  }
}

/**
 * Deletes what is older than `now - retentionMs` (see the module comment). One transaction.
 *
 * @example
 *   pruneState(state, { now: Date.now(), retentionMs: 400 * DAY_MS }); // { audit: 12, spend: 3, … }
 */
export function pruneState(db: StateDb, options: PruneOptions): PruneCounts {
  const cutoff = options.now - options.retentionMs;
  const keep = protectedRuns(options.keepNewestRun ?? true);
  const spendBefore = Math.min(
    utcDayStart(cutoff),
    options.keepSpendFrom === undefined ? Infinity : utcDayStart(options.keepSpendFrom),
  );
  try {
    return db.tx(() => {
      const audit = db
        .stmt(
          `DELETE FROM audit WHERE at < ? AND (pod_id IS NULL OR pod_id NOT IN (SELECT pod_id FROM pods WHERE run_id IN (${keep})))`,
        )
        .run(cutoff).changes;
      const spend = db
        .stmt(`DELETE FROM spend WHERE day_start < ? AND (run_id IS NULL OR run_id NOT IN (${keep}))`)
        .run(spendBefore).changes;
      // Pods that ended before the cutoff, outside the protected runs; their routes first.
      const oldPods = `SELECT pod_id FROM pods WHERE ended_at IS NOT NULL AND ended_at < @cutoff
        AND (run_id IS NULL OR run_id NOT IN (${keep}))`;
      const routes = db.stmt(`DELETE FROM routes WHERE pod_id IN (${oldPods})`).run({ cutoff }).changes;
      const pods = db.stmt(`DELETE FROM pods WHERE pod_id IN (${oldPods})`).run({ cutoff }).changes;
      const runs = db
        .stmt(
          `DELETE FROM runs WHERE ended_at IS NOT NULL AND ended_at < ? AND run_id NOT IN (${keep})
           AND NOT EXISTS (SELECT 1 FROM pods WHERE pods.run_id = runs.run_id)`,
        )
        .run(cutoff).changes;
      const usage = db
        .stmt('DELETE FROM usage WHERE scope <> ? AND scope NOT IN (SELECT route_id FROM routes)')
        .run(GLOBAL_USAGE_SCOPE).changes;
      const wake = db.stmt('DELETE FROM wake_requests WHERE cleared_at IS NOT NULL').run().changes;
      const counts = {
        before: new Date(cutoff).toISOString(),
        audit,
        spend,
        runs,
        pods,
        routes,
        usage,
        wake,
      };
      if (options.dryRun === true) throw new DryRun(counts);
      return counts;
    });
  } catch (err) {
    if (err instanceof DryRun) return err.counts;
    throw err;
  }
}

/** When the state was last pruned (ms), or null. */
/** When the state was last pruned (ms), or null. */
export function lastPruneAt(db: StateDb): number | null {
  const value = db.stmt(`SELECT value FROM ${MARKER_TABLE} WHERE key = ?`).pluck().get(LAST_PRUNE_KEY) as
    string | undefined;
  const at = Number(value);
  return value === undefined || !Number.isFinite(at) ? null : at;
}

/**
 * The watchdog's daily prune: runs {@link pruneState} when the last one is a day old or more
 * (or in the future: a clock set back must not stop pruning for good), records the time, and
 * audits the counts when anything went. Returns the counts, or null when not due. The caller
 * holds the manager lock.
 */
export function pruneIfDue(db: StateDb, options: { now: number; retentionMs: number }): PruneCounts | null {
  const last = lastPruneAt(db);
  if (last !== null && options.now - last < DAY_MS && last <= options.now) return null;
  const counts = pruneState(db, options);
  db.stmt(
    `INSERT INTO ${MARKER_TABLE} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  ).run(LAST_PRUNE_KEY, String(options.now));
  const total =
    counts.audit + counts.spend + counts.runs + counts.pods + counts.routes + counts.usage + counts.wake;
  if (total > 0)
    appendAudit(db, {
      action: 'prune',
      reason: 'retention',
      details: { ...counts, retentionDays: Math.round(options.retentionMs / DAY_MS) },
      at: options.now,
    });
  return counts;
}
