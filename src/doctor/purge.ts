import { existsSync, readdirSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import { ipKeyFile } from '../logs/client-ip.js';
import type { Clock } from '../shared/clock.js';
import { appendAudit } from '../state/audit.js';
import { STATE_FILE, type StateDb } from '../state/db.js';
import { type PruneCounts, pruneState } from '../state/retention.js';
import { utcMonthStart } from '../state/spend.js';
import { consoleFile, type DaemonName, logFile, readDaemon } from '../daemons/detached-process.js';
import { connectRedis, redactUrl } from '../gateway/redis-client.js';
import { AppError } from '../shared/errors.js';
import { silentLogger } from '../shared/logger.js';

/*
 * `runpod-llm purge`: removes what the tool keeps — log files, the disk cache, ended
 * runs — and reports what it removed (or, dry, would remove). Never a running pod's state: the
 * active run, its pods, their audit lines and spend stay; so does this month's spend of every
 * run, which the monthly budget adds up. A file a running daemon writes is emptied, not deleted
 * (deleting it would leave the daemon writing to a file nobody can see, still taking space).
 */

export interface PurgeReport {
  dryRun: boolean;
  logs?: { removed: string[]; emptied: string[]; bytes: number };
  cache?: { dir: string | null; removed: number; bytes: number; note?: string };
  /** The cache shared in Redis (`redis_url`): its keys under `<redis_prefix>c:`. */
  redisCache?: { url: string; removed: number; bytes: number };
  runs?: (PruneCounts & { note: string; stateBytes?: { before: number; after: number } }) | { note: string };
}

interface FileLike {
  path: string;
  bytes: number;
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** `file` and its rotated copies (`file.1`, `file.2`, …) that exist. */
function withRotated(file: string): FileLike[] {
  const out: FileLike[] = [];
  const current = sizeOf(file);
  if (current !== undefined) out.push({ path: file, bytes: current });
  let names: string[] = [];
  try {
    names = readdirSync(dirname(file));
  } catch {
    return out;
  }
  const prefix = `${basename(file)}.`;
  for (const name of names.sort()) {
    if (!name.startsWith(prefix) || !/^\d+$/.test(name.slice(prefix.length))) continue;
    const bytes = sizeOf(join(dirname(file), name));
    if (bytes !== undefined) out.push({ path: join(dirname(file), name), bytes });
  }
  return out;
}

export function purgeLogs(home: string, config: Config, dryRun: boolean): NonNullable<PurgeReport['logs']> {
  const removed: string[] = [];
  const emptied: string[] = [];
  let bytes = 0;
  const seen = new Set<string>();
  const handle = (f: FileLike, inUse: boolean): void => {
    if (seen.has(f.path)) return;
    seen.add(f.path);
    bytes += f.bytes;
    if (inUse) {
      if (f.bytes === 0) return;
      if (!dryRun) truncateSync(f.path, 0);
      emptied.push(f.path);
    } else {
      if (!dryRun) unlinkSync(f.path);
      removed.push(f.path);
    }
  };
  for (const name of ['gateway', 'watchdog'] as DaemonName[]) {
    const running = readDaemon(home, name)?.running === true;
    for (const f of withRotated(logFile(home, name))) handle(f, running && f.path === logFile(home, name));
    const out = consoleFile(home, name);
    const outBytes = sizeOf(out);
    if (outBytes !== undefined) handle({ path: out, bytes: outBytes }, running);
  }
  // A log_file of the user's own (a foreground gateway may be writing it: emptied, not deleted).
  if (config.log_file !== undefined)
    for (const f of withRotated(config.log_file)) handle(f, f.path === config.log_file);
  const key = ipKeyFile(home);
  const keyBytes = sizeOf(key);
  if (keyBytes !== undefined) handle({ path: key, bytes: keyBytes }, false);
  return { removed, emptied, bytes };
}

export function purgeCache(home: string, config: Config, dryRun: boolean): NonNullable<PurgeReport['cache']> {
  const dir = config.cache_dir ?? null;
  if (dir === null || !existsSync(dir))
    return {
      dir,
      removed: 0,
      bytes: 0,
      note:
        dir === null
          ? config.redis_url === undefined
            ? 'no disk cache (cache_dir is not set; the memory cache ends with the gateway)'
            : 'no disk cache (cache_dir is not set)'
          : 'the cache directory does not exist',
    };
  let removed = 0;
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.entry') && !name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    bytes += sizeOf(path) ?? 0;
    if (!dryRun) unlinkSync(path);
    removed++;
  }
  const running = readDaemon(home, 'gateway')?.running === true;
  return {
    dir,
    removed,
    bytes,
    ...(running
      ? {
          note: 'the running gateway still holds its entries in memory until cache_ttl_s passes or it restarts (`runpod-llm down`, then `up`)',
        }
      : {}),
  };
}

/**
 * The response cache shared in Redis (`redis_url`, every gateway replica reads it): every key
 * under `<redis_prefix>c:` (entries and their bookkeeping), found with SCAN (never KEYS, which
 * blocks a shared server) and removed with UNLINK. The rate-limit windows under the same prefix
 * are left alone. Undefined without `redis_url`; Redis unreachable is an error, not "nothing".
 */
export async function purgeRedisCache(
  config: Config,
  dryRun: boolean,
): Promise<PurgeReport['redisCache'] | undefined> {
  const url = config.redis_url;
  if (url === undefined) return undefined;
  const client = await connectRedis(url, silentLogger(), 3_000);
  try {
    if (client.status !== 'ready')
      throw new AppError(
        'MISSING_REDIS',
        `Redis at ${redactUrl(url)} is not reachable: the shared cache was not purged`,
        {
          hint: 'start Redis (or fix redis_url / REDIS_URL) and run `runpod-llm purge --cache` again',
        },
      );
    const prefix = `${config.redis_prefix}c:`;
    const bytes = Number((await client.get(`${prefix}_bytes`)) ?? 0);
    let removed = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      // The bookkeeping keys (`_lru`, `_bytes`, …) go too but are not entries.
      removed += keys.filter((k) => !k.slice(prefix.length).startsWith('_')).length;
      if (!dryRun && keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
    return { url: redactUrl(url), removed, bytes: Number.isFinite(bytes) ? bytes : 0 };
  } finally {
    client.disconnect();
  }
}

/** Ended runs with their pods, routes, usage rows and audit lines; spend before this month. The caller holds the manager lock. */
export function purgeRuns(state: StateDb, clock: Clock, dryRun: boolean): NonNullable<PurgeReport['runs']> {
  const now = clock.now();
  const counts = pruneState(state, {
    now,
    retentionMs: 0,
    keepNewestRun: false,
    keepSpendFrom: utcMonthStart(now),
    dryRun,
  });
  let stateBytes: { before: number; after: number } | undefined;
  if (
    !dryRun &&
    counts.runs + counts.pods + counts.audit + counts.spend + counts.routes + counts.usage + counts.wake > 0
  ) {
    appendAudit(state, { action: 'purge', reason: 'user', details: { ...counts } });
    // Deleted rows leave free pages in the file: give them back, so the data is gone from disk too.
    const file = join(state.home, STATE_FILE);
    const before = sizeOf(file) ?? 0;
    state.stmt('VACUUM').run();
    state.stmt('PRAGMA wal_checkpoint(TRUNCATE)').all();
    stateBytes = { before, after: sizeOf(file) ?? 0 };
  }
  return {
    ...counts,
    ...(stateBytes === undefined ? {} : { stateBytes }),
    note: "the active run and its pods are kept, and this month's spend of every run (the monthly budget counts it)",
  };
}
