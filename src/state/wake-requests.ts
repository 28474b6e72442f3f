import type { StateDb } from './db.js';

/*
 * Wake-on-request: a gateway with no ready route asks the manager for a pod by writing
 * a row here (it never holds the RunPod key). At most one request is pending at a time (a partial
 * unique index enforces it), so a burst of requests from several gateways triggers one wake.
 */

/** One wake request as stored. */
export interface WakeRequest {
  id: number;
  requestedAt: number;
  lastRequestedAt: number;
  /** How many requests asked while this wake was pending. */
  requests: number;
}

interface WakeDbRow {
  id: number;
  requested_at: number;
  last_requested_at: number;
  requests: number;
}

function fromDb(r: WakeDbRow): WakeRequest {
  return {
    id: r.id,
    requestedAt: r.requested_at,
    lastRequestedAt: r.last_requested_at,
    requests: r.requests,
  };
}

/** Cleared requests kept for status/history. */
const KEEP_CLEARED = 100;

/**
 * Asks for a wake; idempotent while one is pending (it only counts the extra request).
 * Returns the pending request and whether this call created it.
 *
 * @example
 *   const { created } = requestWake(state, Date.now()); // 503 model_waking either way
 */
export function requestWake(
  db: StateDb,
  at: number = db.clock.now(),
): { wake: WakeRequest; created: boolean } {
  return db.tx(() => {
    const bumped = db
      .stmt(
        `UPDATE wake_requests SET requests = requests + 1, last_requested_at = max(last_requested_at, ?)
         WHERE cleared_at IS NULL`,
      )
      .run(at);
    if (bumped.changes === 0) {
      db.stmt('INSERT INTO wake_requests (requested_at, last_requested_at) VALUES (?, ?)').run(at, at);
    }
    const wake = pendingWake(db);
    if (wake === null) throw new Error('wake request vanished inside its own transaction');
    return { wake, created: bumped.changes === 0 };
  });
}

export function pendingWake(db: StateDb): WakeRequest | null {
  const r = db.stmt('SELECT * FROM wake_requests WHERE cleared_at IS NULL').get() as WakeDbRow | undefined;
  return r === undefined ? null : fromDb(r);
}

/** The manager acted on the wake (pod started or recreated, or refused): clear it. */
export function clearWake(db: StateDb, at: number = db.clock.now()): void {
  db.tx(() => {
    db.stmt('UPDATE wake_requests SET cleared_at = ? WHERE cleared_at IS NULL').run(at);
    db.stmt(
      `DELETE FROM wake_requests WHERE cleared_at IS NOT NULL AND id NOT IN
         (SELECT id FROM wake_requests WHERE cleared_at IS NOT NULL ORDER BY id DESC LIMIT ${KEEP_CLEARED})`,
    ).run();
  });
}
