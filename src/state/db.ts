import { chmodSync, closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Clock, systemClock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { ensurePrivateDir } from '../shared/secret-file.js';
import { APP_MARKER, MARKER_TABLE, MIGRATIONS } from './migrations.js';

/** The database file inside `RUNPOD_LLM_HOME`. */
export const STATE_FILE = 'state.db';
/** Schema version this build writes and understands (`PRAGMA user_version`). */
export const SCHEMA_VERSION = MIGRATIONS.length;

const SQLITE_HEADER = Buffer.from('SQLite format 3\u0000', 'latin1');
const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

export interface OpenStateOptions {
  /** The state directory (`RUNPOD_LLM_HOME`, resolved by the caller). Created 0700. */
  home: string;
  /** Time source for `updated_at`, `at` and similar columns (default: the system clock). */
  clock?: Clock;
  /**
   * Open without writing anything: no directory, no migration, no chmod. For the gateway, which
   * only reads routes (and writes usage through its own read-write handle when it needs to).
   */
  readonly?: boolean;
  /**
   * Open an existing, current state only: create nothing and migrate nothing (STATE_MISSING,
   * STATE_TOO_OLD otherwise). For the gateway's usage-writing handle: the manager owns the
   * schema. Implied by `readonly`.
   */
  mustExist?: boolean;
  /** How long a statement waits for another process's write lock (default 5 s). */
  busyTimeoutMs?: number;
}

/** An open state database. Repositories (`routes.ts`, `pods.ts`, …) take this as first argument. */
export interface StateDb {
  readonly path: string;
  readonly home: string;
  readonly readonly: boolean;
  readonly clock: Clock;
  /** The underlying better-sqlite3 handle (for repositories and tests). */
  readonly sql: Database.Database;
  /** A prepared statement, cached per handle (the gateway polls once a second). */
  stmt(source: string): Database.Statement;
  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so two
   * processes doing read-modify-write never deadlock into SQLITE_BUSY halfway through.
   */
  tx<T>(fn: () => T): T;
  close(): void;
}

/**
 * Opens (creating and migrating when needed) the state database `state.db` under `home`.
 *
 * Refuses, without writing a byte, a file that is not SQLite (`STATE_CORRUPT`), a SQLite
 * database that is not ours (`STATE_FOREIGN`) or one written by a newer version
 * (`STATE_TOO_NEW`). The file and its `-wal`/`-shm` companions are 0600, the directory 0700.
 *
 * @example
 *   const state = openState({ home: process.env.RUNPOD_LLM_HOME ?? join(homedir(), '.runpod-llm') });
 *   try { listReadyRoutes(state); } finally { state.close(); }
 */
export function openState(options: OpenStateOptions): StateDb {
  const { home } = options;
  const readonly = options.readonly ?? false;
  const mustExist = readonly || (options.mustExist ?? false);
  const path = join(home, STATE_FILE);
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;

  if (mustExist) {
    if (!existsSync(path)) {
      throw new AppError('STATE_MISSING', `no runpod-llm state at ${path}`, {
        hint: 'start a pod with `runpod-llm up` first (or set RUNPOD_LLM_HOME to the right directory)',
      });
    }
  } else {
    ensurePrivateDir(home);
    createPrivateEmptyFile(path);
  }
  checkHeader(path);

  let sql: Database.Database;
  try {
    sql = new Database(path, { readonly, fileMustExist: true, timeout: busyTimeoutMs });
  } catch (err) {
    throw isCorruption(err) ? corrupt(path, err) : err;
  }
  try {
    sql.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    const version = identify(sql, path);
    if (mustExist) {
      if (version < SCHEMA_VERSION) {
        throw new AppError(
          'STATE_TOO_OLD',
          `state ${path} has schema ${version}, this build needs ${SCHEMA_VERSION}`,
          {
            hint: 'run any manager command (e.g. `runpod-llm status`) once to migrate it',
          },
        );
      }
    }
    if (!readonly) {
      // WAL: the gateway reads routes and writes usage while the manager writes; readers never
      // block the writer. Switching the journal mode writes the header, hence after identify().
      sql.pragma('journal_mode = WAL');
      sql.pragma('synchronous = NORMAL');
      if (!mustExist) migrate(sql);
      tightenModes(path);
    }
    sql.pragma('foreign_keys = ON');
  } catch (err) {
    sql.close();
    throw isCorruption(err) ? corrupt(path, err) : err;
  }
  return makeStateDb(sql, { path, home, readonly, clock: options.clock ?? systemClock });
}

function makeStateDb(
  sql: Database.Database,
  meta: { path: string; home: string; readonly: boolean; clock: Clock },
): StateDb {
  const cache = new Map<string, Database.Statement>();
  return {
    ...meta,
    sql,
    stmt(source) {
      let s = cache.get(source);
      if (s === undefined) {
        s = sql.prepare(source);
        cache.set(source, s);
      }
      return s;
    },
    tx<T>(fn: () => T): T {
      return sql.transaction(fn).immediate();
    },
    close() {
      cache.clear();
      if (sql.open) sql.close();
    },
  };
}

/** Creates the db file 0600 before SQLite does (SQLite would use 0644 minus the umask). */
function createPrivateEmptyFile(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** An empty file is a new database; anything else must start with the SQLite magic string. */
function checkHeader(path: string): void {
  const size = statSync(path).size;
  if (size === 0) return;
  const head = Buffer.alloc(SQLITE_HEADER.length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 100 || !head.equals(SQLITE_HEADER)) throw corrupt(path, undefined, 'is not a SQLite database');
}

/** Returns our schema version, or throws when the file is not (or no longer) ours. */
function identify(sql: Database.Database, path: string): number {
  const check = sql.pragma('quick_check', { simple: true });
  if (check !== 'ok') throw corrupt(path, undefined, `failed SQLite's integrity check (${String(check)})`);
  const version = Number(sql.pragma('user_version', { simple: true }));
  const tables = sql.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
  if (version === 0 && tables.length === 0) return 0;
  if (!tables.includes(MARKER_TABLE)) {
    throw new AppError('STATE_FOREIGN', `${path} is a SQLite database that runpod-llm did not create`, {
      hint: 'point RUNPOD_LLM_HOME at a directory of its own; runpod-llm never overwrites this file',
    });
  }
  const app = sql.prepare(`SELECT value FROM ${MARKER_TABLE} WHERE key = 'app'`).pluck().get();
  if (app !== APP_MARKER) {
    throw new AppError('STATE_FOREIGN', `${path} carries a marker of another application (${String(app)})`, {
      hint: 'point RUNPOD_LLM_HOME at a directory of its own; runpod-llm never overwrites this file',
    });
  }
  if (version > SCHEMA_VERSION) {
    throw new AppError(
      'STATE_TOO_NEW',
      `${path} has schema version ${version}; this runpod-llm knows up to ${SCHEMA_VERSION}`,
      { hint: 'upgrade runpod-llm-manager (the state was written by a newer version)' },
    );
  }
  if (version === 0) throw corrupt(path, undefined, 'has our marker but no schema version');
  return version;
}

/** Applies the missing migrations, each in its own immediate transaction with its version bump. */
function migrate(sql: Database.Database): void {
  for (;;) {
    const applied = sql
      .transaction(() => {
        // Re-read inside the write lock: another manager may have migrated meanwhile.
        const current = Number(sql.pragma('user_version', { simple: true }));
        const next = MIGRATIONS[current];
        if (next === undefined) return false;
        sql.exec(next);
        sql.pragma(`user_version = ${current + 1}`);
        return true;
      })
      .immediate();
    if (!applied) return;
  }
}

/** chmod regardless of umask; SQLite creates -wal/-shm itself. */
function tightenModes(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if ((statSync(file).mode & 0o777) !== 0o600) chmodSync(file, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** SQLite's own corruption codes; anything else (busy, permissions) is reported as it is. */
function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT'));
}

function corrupt(path: string, cause: unknown, what = 'cannot be read as a SQLite database'): AppError {
  return new AppError('STATE_CORRUPT', `state file ${path} ${what}`, {
    hint: `runpod-llm leaves it untouched; move it away (e.g. mv ${path} ${path}.bad) to start fresh, or restore a backup`,
    ...(cause === undefined ? {} : { cause }),
  });
}
