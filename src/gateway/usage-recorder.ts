import type { StateDb } from '../state/db.js';
import { recordUsageBatch, type UsageEntry } from '../state/usage.js';
import type { Logger } from '../shared/logger.js';

/*
 * Gateway usage for the watchdog (idleness, tokens), batched: requests add to in-memory
 * counters, a timer writes them in one transaction every `flushMs`. The request path never
 * waits for SQLite. Nothing is lost on shutdown: `close()` flushes.
 */

/** Where the gateway records usage; writes are batched. */
export interface UsageSink {
  record(routeId: string, at: number, tokensIn: number, tokensOut: number): void;
  flush(): void;
  close(): void;
}

export function createUsageRecorder(options: {
  db: () => StateDb | undefined;
  flushMs?: number;
  logger: Logger;
}): UsageSink {
  let pending = new Map<string, UsageEntry>();
  function flush(): void {
    if (pending.size === 0) return;
    const db = options.db();
    if (db === undefined) return; // no state yet: keep counting until it appears
    const batch = [...pending.values()];
    pending = new Map();
    try {
      recordUsageBatch(db, batch);
    } catch (err) {
      options.logger.warn({ err: (err as Error).message }, 'writing usage to the state failed; will retry');
      for (const e of batch) merge(e.routeId ?? '', e.lastRequestAt, e.requests, e.tokensIn, e.tokensOut);
    }
  }
  function merge(routeId: string, at: number, requests: number, tokensIn: number, tokensOut: number): void {
    const entry = pending.get(routeId);
    if (entry === undefined) {
      pending.set(routeId, {
        routeId: routeId === '' ? null : routeId,
        lastRequestAt: at,
        requests,
        tokensIn,
        tokensOut,
      });
      return;
    }
    entry.lastRequestAt = Math.max(entry.lastRequestAt, at);
    entry.requests += requests;
    entry.tokensIn += tokensIn;
    entry.tokensOut += tokensOut;
  }
  const timer = setInterval(flush, options.flushMs ?? 1_000);
  timer.unref();
  return {
    record: (routeId, at, tokensIn, tokensOut) => merge(routeId, Math.floor(at), 1, tokensIn, tokensOut),
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
