import type { StateDb } from './db.js';

/** The usage scope that sums every route: what the watchdog's idleness rule reads. */
export const GLOBAL_USAGE_SCOPE = '*';

/** One gateway flush for one route (or for no route: a request that found none, e.g. a wake). */
export interface UsageEntry {
  routeId: string | null;
  /** Time of the newest request in this batch. */
  lastRequestAt: number;
  requests: number;
  tokensIn: number;
  tokensOut: number;
}

export interface UsageRow {
  /** `*` for the total, else a route id. */
  scope: string;
  lastRequestAt: number | null;
  requests: number;
  tokensIn: number;
  tokensOut: number;
}

export interface UsageSnapshot {
  total: UsageRow;
  byRoute: UsageRow[];
}

interface UsageDbRow {
  scope: string;
  last_request_at: number | null;
  requests: number;
  tokens_in: number;
  tokens_out: number;
}

function fromDb(r: UsageDbRow): UsageRow {
  return {
    scope: r.scope,
    lastRequestAt: r.last_request_at,
    requests: r.requests,
    tokensIn: r.tokens_in,
    tokensOut: r.tokens_out,
  };
}

const UPSERT = `INSERT INTO usage (scope, last_request_at, requests, tokens_in, tokens_out)
  VALUES (@scope, @lastRequestAt, @requests, @tokensIn, @tokensOut)
  ON CONFLICT (scope) DO UPDATE SET
    last_request_at = max(coalesce(last_request_at, excluded.last_request_at), excluded.last_request_at),
    requests = requests + excluded.requests,
    tokens_in = tokens_in + excluded.tokens_in,
    tokens_out = tokens_out + excluded.tokens_out`;

/**
 * Adds a batch of gateway usage in one transaction: each entry increments its route's row and
 * the global `*` row; `last_request_at` only moves forward. Several gateway processes may call
 * this at once (WAL + busy timeout serialise them; increments never lose an update).
 *
 * @example
 *   recordUsageBatch(state, [{ routeId: 'pod1', lastRequestAt: Date.now(), requests: 3, tokensIn: 120, tokensOut: 480 }]);
 */
export function recordUsageBatch(db: StateDb, entries: readonly UsageEntry[]): void {
  for (const e of entries) {
    for (const n of [e.requests, e.tokensIn, e.tokensOut, e.lastRequestAt]) {
      if (!Number.isSafeInteger(n) || n < 0)
        throw new TypeError(`usage values must be integers >= 0, got ${n}`);
    }
  }
  if (entries.length === 0) return;
  const upsert = db.stmt(UPSERT);
  db.tx(() => {
    for (const e of entries) {
      const values = {
        lastRequestAt: e.lastRequestAt,
        requests: e.requests,
        tokensIn: e.tokensIn,
        tokensOut: e.tokensOut,
      };
      if (e.routeId !== null) upsert.run({ scope: e.routeId, ...values });
      upsert.run({ scope: GLOBAL_USAGE_SCOPE, ...values });
    }
  });
}

/** The totals and the per-route rows. A fresh state has a zero total with no last request. */
export function readUsage(db: StateDb): UsageSnapshot {
  const rows = (db.stmt('SELECT * FROM usage ORDER BY scope').all() as UsageDbRow[]).map(fromDb);
  const total = rows.find((r) => r.scope === GLOBAL_USAGE_SCOPE) ?? {
    scope: GLOBAL_USAGE_SCOPE,
    lastRequestAt: null,
    requests: 0,
    tokensIn: 0,
    tokensOut: 0,
  };
  return { total, byRoute: rows.filter((r) => r.scope !== GLOBAL_USAGE_SCOPE) };
}

/** Drops per-route rows of routes that no longer exist (bounded table); the total stays. */
export function pruneRouteUsage(db: StateDb): void {
  db.stmt(
    `DELETE FROM usage WHERE scope <> '${GLOBAL_USAGE_SCOPE}' AND scope NOT IN (SELECT route_id FROM routes)`,
  ).run();
}
