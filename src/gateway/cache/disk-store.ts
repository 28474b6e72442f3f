import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../shared/logger.js';
import { ensurePrivateDir } from '../../shared/secret-file.js';
import type { CacheEntryInfo, CacheStats, CacheStore, CachedResponse } from './cache-store.js';
import { type MemoryCacheOptions, MemoryCacheStore } from './memory-store.js';

/*
 * The memory cache, persisted under `cache_dir` so a restart keeps its hits. One file per entry
 * (`<key>.entry`, 0600, in a 0700 directory): a JSON header line with a SHA-256 of the body, then
 * the body. At start every file is checked; a corrupt, foreign or expired one is deleted, never
 * served. Writes happen off the request path (write to a temp file, then rename).
 */

interface Header {
  v: 1;
  key: string;
  kind: 'json' | 'sse';
  contentType: string;
  createdAt: number;
  promptTokens: number | null;
  completionTokens: number | null;
  size: number;
  sha256: string;
}

const SUFFIX = '.entry';
const KEY = /^[0-9a-f]{64}$/;

export class DiskCacheStore implements CacheStore {
  readonly #memory: MemoryCacheStore;
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #writes = new Set<Promise<void>>();
  #closed = false;
  /** Files dropped at start because they were corrupt (for tests and the log). */
  readonly dropped: string[] = [];

  constructor(dir: string, options: Omit<MemoryCacheOptions, 'onRemove'>, logger: Logger) {
    this.#dir = dir;
    this.#logger = logger;
    ensurePrivateDir(dir);
    this.#memory = new MemoryCacheStore({ ...options, onRemove: (key) => this.#remove(key) });
    this.#load(options.ttlMs, options.clock.now());
  }

  get(key: string): CachedResponse | undefined {
    return this.#memory.get(key);
  }

  set(key: string, value: CachedResponse): void {
    this.#memory.set(key, value);
    if (!this.#memory.has(key)) return; // too large to keep
    const header: Header = {
      v: 1,
      key,
      kind: value.kind,
      contentType: value.contentType,
      createdAt: value.createdAt,
      promptTokens: value.promptTokens ?? null,
      completionTokens: value.completionTokens ?? null,
      size: value.body.length,
      sha256: createHash('sha256').update(value.body).digest('hex'),
    };
    const file = join(this.#dir, `${key}${SUFFIX}`);
    const tmp = `${file}.${process.pid}.tmp`;
    const write = writeFile(tmp, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), value.body]), {
      mode: 0o600,
    })
      .then(() => rename(tmp, file))
      .catch((err: Error) =>
        this.#logger.warn({ err: err.message }, 'cache entry could not be written to disk'),
      )
      .finally(() => this.#writes.delete(write));
    this.#writes.add(write);
  }

  stats(): CacheStats {
    return this.#memory.stats();
  }

  list(limit: number): CacheEntryInfo[] {
    return this.#memory.list(limit);
  }

  /** Waits for pending writes (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#writes]);
  }

  async close(): Promise<void> {
    await this.flush();
    // Entries stay on disk: that is the point. Only the memory index is dropped (without
    // treating that as removal).
    this.#closed = true;
    await this.#memory.close();
  }

  /** An entry left the cache (evicted, expired): its file goes too, so the disk stays bounded. */
  #remove(key: string): void {
    if (this.#closed) return;
    unlink(join(this.#dir, `${key}${SUFFIX}`)).catch(() => undefined);
  }

  #load(ttlMs: number, now: number): void {
    const found: Array<{ key: string; value: CachedResponse }> = [];
    for (const name of readdirSync(this.#dir)) {
      const path = join(this.#dir, name);
      if (name.endsWith('.tmp')) {
        unlinkSync(path);
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      const parsed = parseEntry(readFileSync(path), name.slice(0, -SUFFIX.length));
      if (parsed === undefined || now - parsed.createdAt >= ttlMs) {
        if (parsed === undefined) this.dropped.push(name);
        unlinkSync(path);
        continue;
      }
      found.push({ key: name.slice(0, -SUFFIX.length), value: parsed });
    }
    if (this.dropped.length > 0)
      this.#logger.warn({ files: this.dropped.length }, 'corrupt cache entries dropped');
    // Oldest first, so the LRU order after a restart follows age.
    found.sort((a, b) => a.value.createdAt - b.value.createdAt);
    for (const { key, value } of found) this.#memory.restore(key, value);
  }
}

function parseEntry(raw: Buffer, key: string): CachedResponse | undefined {
  if (!KEY.test(key)) return undefined;
  const newline = raw.indexOf(0x0a);
  if (newline < 0) return undefined;
  let header: Header;
  try {
    header = JSON.parse(raw.subarray(0, newline).toString('utf8')) as Header;
  } catch {
    return undefined;
  }
  const body = raw.subarray(newline + 1);
  if (
    header.v !== 1 ||
    header.key !== key ||
    header.size !== body.length ||
    (header.kind !== 'json' && header.kind !== 'sse')
  )
    return undefined;
  if (createHash('sha256').update(body).digest('hex') !== header.sha256) return undefined;
  return {
    kind: header.kind,
    contentType: String(header.contentType),
    body: Buffer.from(body),
    createdAt: Number(header.createdAt),
    promptTokens: header.promptTokens ?? undefined,
    completionTokens: header.completionTokens ?? undefined,
  };
}
