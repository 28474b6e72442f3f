import type { StateDb } from './db.js';

const DAY_MS = 86_400_000;

/**
 * Spend is kept per pod per UTC day: enough for per-run, per-day and per-month budgets while the
 * table grows by one row per pod per day, however often the watchdog accrues.
 * Days and months are UTC so that every process (and cron) agrees on the boundary.
 */
export interface SpendEntry {
  podId: string;
  /** When the cost was accrued; it is booked on that UTC day. */
  at: number;
  usd: number;
  /** Default: the pod's run as recorded in `pods`. */
  runId?: string | null;
}

/** 00:00 UTC of the day containing `ms`. */
export function utcDayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** 00:00 UTC of the first day of the month containing `ms`. */
export function utcMonthStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/**
 * Adds accrued cost (the watchdog's `accrue` action). Zero adds nothing.
 *
 * @example
 *   addSpend(state, { podId, at: now, usd: 0.0125 });
 */
export function addSpend(db: StateDb, entry: SpendEntry): void {
  if (!Number.isFinite(entry.usd) || entry.usd < 0)
    throw new TypeError(`spend must be a finite amount >= 0, got ${entry.usd}`);
  if (entry.usd === 0) return;
  db.stmt(
    `INSERT INTO spend (pod_id, day_start, run_id, usd)
     VALUES (@podId, @day, coalesce(@runId, (SELECT run_id FROM pods WHERE pod_id = @podId)), @usd)
     ON CONFLICT (pod_id, day_start) DO UPDATE SET usd = usd + excluded.usd`,
  ).run({ podId: entry.podId, day: utcDayStart(entry.at), runId: entry.runId ?? null, usd: entry.usd });
}

/**
 * Total spend booked on UTC days from the day containing `sinceMs` on (day granularity).
 *
 * @example
 *   spendSince(state, utcDayStart(now));   // today
 *   spendSince(state, utcMonthStart(now)); // this month
 */
export function spendSince(db: StateDb, sinceMs: number): number {
  return db
    .stmt('SELECT coalesce(sum(usd), 0) FROM spend WHERE day_start >= ?')
    .pluck()
    .get(utcDayStart(sinceMs)) as number;
}

/** Total spend of one run, across all its pods (recreated ones too). */
export function spendForRun(db: StateDb, runId: string): number {
  return db.stmt('SELECT coalesce(sum(usd), 0) FROM spend WHERE run_id = ?').pluck().get(runId) as number;
}

/** Run, today and this month, as the watchdog's `decide` wants them. */
export function spendSummary(
  db: StateDb,
  runId: string | null,
  now: number,
): { run: number; day: number; month: number } {
  return {
    run: runId === null ? 0 : spendForRun(db, runId),
    day: spendSince(db, utcDayStart(now)),
    month: spendSince(db, utcMonthStart(now)),
  };
}
