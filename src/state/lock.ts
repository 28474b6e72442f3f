import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type Clock, systemClock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { ensurePrivateDir } from '../shared/secret-file.js';

export const LOCK_FILE = 'manager.lock';

/** A lock file that exists but is still empty may be mid-write by its creator for this long. */
const UNWRITTEN_GRACE_MS = 10_000;

export interface LockInfo {
  pid: number;
  /** ISO 8601. */
  started_at: string;
  command: string;
}

/** Releases the lock; safe to call twice, and never removes a lock another process holds. */
export type Release = () => void;

/**
 * Takes the manager lock (`manager.lock` in the state dir) so two managers never act at once.
 * The file is created atomically (`O_CREAT|O_EXCL`, 0600). A lock left by a dead process is
 * recovered; a live holder makes this throw `STATE_LOCKED`.
 *
 * @example
 *   const release = acquireLock(home, 'up');
 *   try { await up(...); } finally { release(); }
 */
export function acquireLock(home: string, command: string, options: { clock?: Clock } = {}): Release {
  ensurePrivateDir(home);
  const path = join(home, LOCK_FILE);
  const clock = options.clock ?? systemClock;
  const mine: LockInfo = { pid: process.pid, started_at: new Date(clock.now()).toISOString(), command };
  const content = `${JSON.stringify(mine)}\n`;
  // Two attempts: the second follows the recovery of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      recoverIfStale(path);
      continue;
    }
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return makeRelease(path, content);
  }
  // Someone else took the lock between our recovery and our retry.
  throw lockedError(path, readLock(home));
}

/** The current lock holder, or null when unlocked (or the file is unreadable/empty). */
export function readLock(home: string): LockInfo | null {
  return parseLock(readText(join(home, LOCK_FILE)));
}

/** True when `pid` is a running process (EPERM: it exists but belongs to someone else). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function makeRelease(path: string, content: string): Release {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    // Only our own lock: if it was (wrongly) recovered by someone else, theirs stays.
    if (readText(path) === content) unlinkQuiet(path);
  };
}

/**
 * Throws STATE_LOCKED when the holder is alive; otherwise removes the stale lock. Removal goes
 * through a rename so that two processes recovering at once cannot delete a fresh lock the other
 * just created: whoever renames checks that it moved the very file it judged stale.
 */
function recoverIfStale(path: string): void {
  const text = readText(path);
  if (text === undefined) return; // vanished meanwhile: just retry
  const info = parseLock(text);
  if (info === null) {
    // Empty or half-written: its creator may be between open and write. (File times are wall
    // clock, so this compares with the real time, not the injected clock.)
    const age = Date.now() - statMtime(path);
    if (age < UNWRITTEN_GRACE_MS) throw lockedError(path, null);
  } else if (info.pid === process.pid || isProcessAlive(info.pid)) {
    throw lockedError(path, info);
  }
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (readText(aside) !== text) {
    // We moved a lock that appeared after our read: put it back (link fails if a third one exists).
    try {
      linkSync(aside, path);
    } catch {
      // leave it: the new holder is protected by the live lock now at `path`
    }
    unlinkQuiet(aside);
    throw lockedError(path, parseLock(readText(path)));
  }
  unlinkQuiet(aside);
}

function lockedError(path: string, info: LockInfo | null): AppError {
  const who =
    info === null
      ? 'a lock that is being written'
      : `pid ${info.pid}, \`${info.command}\` since ${info.started_at}`;
  return new AppError('STATE_LOCKED', `another runpod-llm manager is running (${who})`, {
    hint: `wait for it to finish, or stop it (\`runpod-llm down\`); if no manager is running, delete ${path}`,
  });
}

function parseLock(text: string | undefined): LockInfo | null {
  if (text === undefined || text.trim() === '') return null;
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0) {
      return { pid: v.pid, started_at: String(v.started_at ?? ''), command: String(v.command ?? '') };
    }
  } catch {
    // fall through: unparsable
  }
  return null;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function statMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
