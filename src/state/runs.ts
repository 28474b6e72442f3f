import { randomUUID } from 'node:crypto';
import type { StateDb } from './db.js';

/**
 * A run is one `up` session. It spans pod restarts so that a recreated pod inherits the
 * remaining runtime and the run budget keeps counting what earlier pods spent.
 */
export interface RunRow {
  runId: string;
  startedAt: number;
  runtimeLimitMs: number | null;
  budgetUsd: number | null;
  /** The settings `up` ran with (model, GPU list, idle, replicas…), as JSON-compatible data. */
  config: Record<string, unknown>;
  endedAt: number | null;
  endReason: string | null;
}

export type NewRun = Pick<RunRow, 'runtimeLimitMs' | 'budgetUsd'> &
  Partial<Pick<RunRow, 'runId' | 'startedAt' | 'config'>>;

interface RunDbRow {
  run_id: string;
  started_at: number;
  runtime_limit_ms: number | null;
  budget_usd: number | null;
  config: string;
  ended_at: number | null;
  end_reason: string | null;
}

function fromDb(r: RunDbRow): RunRow {
  return {
    runId: r.run_id,
    startedAt: r.started_at,
    runtimeLimitMs: r.runtime_limit_ms,
    budgetUsd: r.budget_usd,
    config: parseConfig(r.config),
    endedAt: r.ended_at,
    endReason: r.end_reason,
  };
}

function parseConfig(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/**
 * Starts a run (one `up`).
 *
 * @example
 *   const run = createRun(state, { runtimeLimitMs: 3_600_000, budgetUsd: 5, config: { model } });
 */
export function createRun(db: StateDb, run: NewRun): RunRow {
  const row: RunRow = {
    runId: run.runId ?? randomUUID(),
    startedAt: run.startedAt ?? db.clock.now(),
    runtimeLimitMs: run.runtimeLimitMs,
    budgetUsd: run.budgetUsd,
    config: run.config ?? {},
    endedAt: null,
    endReason: null,
  };
  db.stmt(
    `INSERT INTO runs (run_id, started_at, runtime_limit_ms, budget_usd, config)
     VALUES (?, ?, ?, ?, ?)`,
  ).run(row.runId, row.startedAt, row.runtimeLimitMs, row.budgetUsd, JSON.stringify(row.config));
  return row;
}

export function getRun(db: StateDb, runId: string): RunRow | undefined {
  const r = db.stmt('SELECT * FROM runs WHERE run_id = ?').get(runId) as RunDbRow | undefined;
  return r === undefined ? undefined : fromDb(r);
}

/** The newest run that has not ended, if any. */
export function activeRun(db: StateDb): RunRow | undefined {
  const r = db
    .stmt('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY started_at DESC, run_id LIMIT 1')
    .get() as RunDbRow | undefined;
  return r === undefined ? undefined : fromDb(r);
}

/** Ends a run once (a second call keeps the first time and reason). */
export function endRun(db: StateDb, runId: string, reason: string, at: number = db.clock.now()): void {
  db.stmt('UPDATE runs SET ended_at = ?, end_reason = ? WHERE run_id = ? AND ended_at IS NULL').run(
    at,
    reason,
    runId,
  );
}

/** The newest run, ended or not (a run parked by idleness may be woken again). */
export function lastRun(db: StateDb): RunRow | undefined {
  const r = db.stmt('SELECT * FROM runs ORDER BY started_at DESC, run_id LIMIT 1').get() as
    RunDbRow | undefined;
  return r === undefined ? undefined : fromDb(r);
}

/**
 * Wake on request: a run whose pods were terminated for idleness becomes active again,
 * keeping its start time (so its runtime limit) and its spend (so its budget). Only when no other
 * run is active; returns whether it was reopened. The caller holds the manager lock.
 */
export function reopenRun(db: StateDb, runId: string): boolean {
  const info = db
    .stmt(
      `UPDATE runs SET ended_at = NULL, end_reason = NULL
       WHERE run_id = ? AND ended_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM runs WHERE ended_at IS NULL)`,
    )
    .run(runId);
  return info.changes === 1;
}
