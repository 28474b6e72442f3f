import { chmodSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import { ensurePrivateDir } from '../shared/secret-file.js';

/*
 * Persisted logs rotate and expire, through rotating-file-stream in its classical
 * logrotate mode: `gateway.log` is the current file; it moves to `gateway.log.1` (and `.1` to
 * `.2`, …) each day and whenever it reaches `maxBytes`; at most `maxFiles` files in all (the
 * current one included); rotated files last written more than `maxAgeMs` ago are deleted. So
 * one log never holds more than `maxFiles × (maxBytes + one batch ≤ 64 KiB)`, nor a line older
 * than `maxAgeMs` plus a day. Files are 0600 in a 0700 directory.
 *
 * (pino-roll, pino's own rolling destination, was tried first: it rolls only when its buffer
 * drains, so under a steady stream of requests the current file grew past 40 MB with a 1 MB
 * limit. rotating-file-stream checks the size on every write.)
 */

/** When log files rotate and how many are kept. */
export interface RotationSettings {
  maxBytes: number;
  maxFiles: number;
  maxAgeMs: number;
}

/**
 * What pino writes to: lines gathered into one write per ≤ BATCH_MS or BATCH_BYTES (the access
 * log is on the request path: at c=1 a write per event-loop turn was a write per request). Lines
 * keep their order; `flush` and `close` hand what is gathered at once.
 */
export interface RotatingLog {
  write(line: string): boolean;
  /** Hands what is gathered to the file now. */
  flush(cb?: (err?: Error) => void): void;
  /** Deletes expired rotated files now (also done at start, on each rotation and every hour). */
  expire(now?: number): string[];
  /** Writes what is gathered and closes the file. */
  close(): Promise<void>;
}

/** A batch is handed to the file at this size at once. */
const BATCH_BYTES = 64 * 1024;
/** …and at the latest this long after its first line. */
const BATCH_MS = 20;

/** The rotated files of `file` (`logs/gateway.log` → `gateway.log.1`, …), oldest first. */
export function rotatedFiles(file: string): Array<{ path: string; bytes: number; mtimeMs: number }> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Array<{ path: string; bytes: number; mtimeMs: number }> = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^\d+$/.test(name.slice(prefix.length))) continue;
    try {
      const st = statSync(join(dir, name));
      out.push({ path: join(dir, name), bytes: st.size, mtimeMs: st.mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  return out.sort((a, b) => a.mtimeMs - b.mtimeMs);
}

/**
 * Deletes the rotated files of `file` last written before `now - maxAgeMs`, and tightens any
 * file of this log that is not 0600 (one an older version wrote). Returns what it deleted.
 */
export function expireLogFiles(file: string, maxAgeMs: number, now: number): string[] {
  const removed: string[] = [];
  for (const f of rotatedFiles(file)) {
    try {
      if (f.mtimeMs < now - maxAgeMs) {
        unlinkSync(f.path);
        removed.push(f.path);
      } else if ((statSync(f.path).mode & 0o777) !== 0o600) chmodSync(f.path, 0o600);
    } catch {
      // removed meanwhile
    }
  }
  try {
    if ((statSync(file).mode & 0o777) !== 0o600) chmodSync(file, 0o600);
  } catch {
    // not created yet
  }
  return removed;
}

/**
 * A pino destination writing `file` with rotation and expiry.
 *
 * @example
 *   const log = openRotatingLog('/home/me/.runpod-llm/logs/gateway.log', { maxBytes: 10 << 20, maxFiles: 5, maxAgeMs: 14 * 86_400_000 });
 *   const logger = createLogger({ destination: log });
 */
export function openRotatingLog(
  file: string,
  settings: RotationSettings,
  options: { onError?: (err: Error) => void } = {},
): RotatingLog {
  if (!Number.isInteger(settings.maxFiles) || settings.maxFiles < 2)
    throw new RangeError('log_max_files must be at least 2 (the current file and one rotated)');
  if (!Number.isInteger(settings.maxBytes) || settings.maxBytes < 1024)
    throw new RangeError('log_max_bytes must be at least 1024');
  const dir = dirname(file);
  const name = basename(file);
  ensurePrivateDir(dir);
  const stream: RotatingFileStream = createStream(
    (index) => (typeof index === 'number' && index > 0 ? `${name}.${index}` : name),
    {
      path: `${dir}/`,
      size: `${settings.maxBytes}B`,
      interval: '1d',
      rotate: settings.maxFiles - 1,
      mode: 0o600,
    },
  );
  const expire = (now = Date.now()): string[] => expireLogFiles(file, settings.maxAgeMs, now);
  // A log that cannot be written must not take the gateway down: report once per error.
  stream.on('error', (err) => options.onError?.(err));
  stream.on('warning', (err) => options.onError?.(err));
  stream.on('rotated', () => expire());
  expire();
  const hourly = setInterval(() => expire(), 3_600_000);
  hourly.unref();

  let batch: string[] = [];
  let batchBytes = 0;
  // Not unref'd: a process ending on its own still writes its last lines (≤ BATCH_MS later).
  let timer: NodeJS.Timeout | undefined;
  const hand = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (batch.length === 0) return;
    const text = batch.length === 1 ? (batch[0] as string) : batch.join('');
    batch = [];
    batchBytes = 0;
    if (!stream.destroyed && !stream.writableEnded) stream.write(text);
  };
  return {
    write(line: string): boolean {
      batch.push(line);
      batchBytes += line.length;
      if (batchBytes >= BATCH_BYTES) hand();
      else timer ??= setTimeout(hand, BATCH_MS);
      return true;
    },
    flush(cb) {
      hand();
      if (cb === undefined) return;
      if (stream.writableNeedDrain) stream.once('drain', () => cb());
      else cb();
    },
    expire,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(hourly);
        hand();
        if (stream.destroyed || stream.writableEnded) return resolve();
        stream.once('finish', () => resolve());
        stream.once('error', () => resolve());
        stream.end();
      }),
  };
}
