import type { StateDb } from './db.js';

/** The audit table keeps the newest rows only: every store is bounded. */
export const AUDIT_MAX_ROWS = 10_000;

/** One thing the manager did and why. `details` must never hold secrets (keys, prompts). */
export interface AuditEvent {
  id: number;
  at: number;
  action: string;
  reason: string | null;
  podId: string | null;
  details: Record<string, unknown> | null;
}

export interface NewAuditEvent {
  action: string;
  reason?: string | null;
  podId?: string | null;
  details?: Record<string, unknown> | null;
  /** Default: the state's clock. */
  at?: number;
}

interface AuditDbRow {
  id: number;
  at: number;
  action: string;
  reason: string | null;
  pod_id: string | null;
  details: string | null;
}

function fromDb(r: AuditDbRow): AuditEvent {
  let details: Record<string, unknown> | null = null;
  if (r.details !== null) {
    try {
      details = JSON.parse(r.details) as Record<string, unknown>;
    } catch {
      details = { unparsed: r.details };
    }
  }
  return { id: r.id, at: r.at, action: r.action, reason: r.reason, podId: r.pod_id, details };
}

/**
 * Appends an audit event (and trims the table to {@link AUDIT_MAX_ROWS}).
 *
 * @example
 *   appendAudit(state, { action: 'terminate', reason: 'runtime_limit', podId, details: { elapsedMs } });
 */
export function appendAudit(db: StateDb, event: NewAuditEvent): AuditEvent {
  const at = event.at ?? db.clock.now();
  const details =
    event.details === undefined || event.details === null ? null : JSON.stringify(event.details);
  const id = db.tx(() => {
    const info = db
      .stmt('INSERT INTO audit (at, action, reason, pod_id, details) VALUES (?, ?, ?, ?, ?)')
      .run(at, event.action, event.reason ?? null, event.podId ?? null, details);
    const newId = Number(info.lastInsertRowid);
    db.stmt('DELETE FROM audit WHERE id <= ?').run(newId - AUDIT_MAX_ROWS);
    return newId;
  });
  return {
    id,
    at,
    action: event.action,
    reason: event.reason ?? null,
    podId: event.podId ?? null,
    details: event.details ?? null,
  };
}

/** Newest first. */
export function listAudit(db: StateDb, options: { limit?: number; podId?: string } = {}): AuditEvent[] {
  const limit = options.limit ?? 100;
  const rows = (
    options.podId === undefined
      ? db.stmt('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit)
      : db.stmt('SELECT * FROM audit WHERE pod_id = ? ORDER BY id DESC LIMIT ?').all(options.podId, limit)
  ) as AuditDbRow[];
  return rows.map(fromDb);
}
