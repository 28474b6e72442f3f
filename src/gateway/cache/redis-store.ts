import type { Redis } from 'ioredis';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { RedisOutageLog } from '../redis-client.js';
import type { CacheEntryInfo, CacheStatsReading, CacheStore, CachedResponse } from './cache-store.js';

/*
 * The response cache in Redis, shared by gateway replicas. Entries are namespaced
 * (`<prefix>c:<sha256>`), expire by TTL, are size-capped, and a byte and entry budget is kept by
 * an LRU index (sorted set by last use) that one Lua script trims atomically on every store.
 * Redis unreachable: the cache steps aside (fail-open: a miss, nothing stored), logged once per
 * outage.
 */

const SET_SCRIPT = `
local size = string.len(ARGV[1])
local old = redis.call('HGET', KEYS[4], ARGV[6])
if old then redis.call('DECRBY', KEYS[3], old) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[4], ARGV[6], size)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
local total = redis.call('INCRBY', KEYS[3], size)
local evicted = 0
while total > tonumber(ARGV[4]) or redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[5]) do
  local victim = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not victim then break end
  local vsize = tonumber(redis.call('HGET', KEYS[4], victim) or '0')
  redis.call('ZREM', KEYS[2], victim)
  redis.call('HDEL', KEYS[4], victim)
  redis.call('HDEL', KEYS[5], victim)
  redis.call('DEL', ARGV[7] .. victim)
  total = redis.call('DECRBY', KEYS[3], vsize)
  evicted = evicted + 1
end
return {total, evicted}
`;

interface CacheClient extends Redis {
  cacheSet(
    entry: string,
    lru: string,
    bytes: string,
    sizes: string,
    hits: string,
    value: Buffer,
    ttlMs: number,
    now: number,
    maxBytes: number,
    maxEntries: number,
    id: string,
    entryPrefix: string,
  ): Promise<[number, number]>;
}

export interface RedisCacheOptions {
  client: Redis;
  prefix: string;
  maxEntries: number;
  maxBytes: number;
  maxEntryBytes: number;
  ttlMs: number;
  clock: Clock;
  logger: Logger;
  onEvict?: (count: number) => void;
}

export class RedisCacheStore implements CacheStore {
  readonly #client: CacheClient;
  readonly #o: RedisCacheOptions;
  readonly #keys: { lru: string; bytes: string; sizes: string; hits: string; entry: string };
  #evictions = 0;
  readonly #outage: RedisOutageLog;

  constructor(options: RedisCacheOptions) {
    for (const name of ['maxEntries', 'maxBytes', 'maxEntryBytes', 'ttlMs'] as const) {
      if (!Number.isInteger(options[name]) || options[name] < 1)
        throw new TypeError(`${name} must be a positive integer`);
    }
    this.#o = options;
    const p = `${options.prefix}c:`;
    this.#keys = { lru: `${p}_lru`, bytes: `${p}_bytes`, sizes: `${p}_sizes`, hits: `${p}_hits`, entry: p };
    options.client.defineCommand('cacheSet', { numberOfKeys: 5, lua: SET_SCRIPT });
    this.#client = options.client as CacheClient;
    this.#outage = new RedisOutageLog(options.logger, 'cache', {
      down: 'the cache is bypassed until it returns',
      up: 'the shared cache is back',
    });
  }

  async get(key: string): Promise<CachedResponse | undefined> {
    try {
      const raw = await this.#client.getBuffer(this.#keys.entry + key);
      this.#outage.ok();
      if (raw === null) return undefined;
      const value = decode(raw);
      if (value === undefined || this.#o.clock.now() - value.createdAt >= this.#o.ttlMs) return undefined;
      void this.#client
        .multi()
        .zadd(this.#keys.lru, this.#o.clock.now(), key)
        .hincrby(this.#keys.hits, key, 1)
        .exec()
        .catch(() => undefined);
      return value;
    } catch (err) {
      this.#outage.failed(err);
      return undefined;
    }
  }

  async set(key: string, value: CachedResponse): Promise<void> {
    const encoded = encode(value);
    if (encoded.length > this.#o.maxEntryBytes) return;
    try {
      const k = this.#keys;
      const [, evicted] = await this.#client.cacheSet(
        k.entry + key,
        k.lru,
        k.bytes,
        k.sizes,
        k.hits,
        encoded,
        this.#o.ttlMs,
        this.#o.clock.now(),
        this.#o.maxBytes,
        this.#o.maxEntries,
        key,
        k.entry,
      );
      this.#outage.ok();
      if (evicted > 0) {
        this.#evictions += evicted;
        this.#o.onEvict?.(evicted);
      }
    } catch (err) {
      this.#outage.failed(err);
    }
  }

  async stats(): Promise<CacheStatsReading> {
    try {
      const [bytes, entries] = await Promise.all([
        this.#client.get(this.#keys.bytes),
        this.#client.zcard(this.#keys.lru),
      ]);
      return { entries, bytes: Number(bytes ?? 0), evictions: this.#evictions };
    } catch {
      // Redis unreachable: the sizes are unknown, not zero (the gauges then publish nothing).
      return { evictions: this.#evictions };
    }
  }

  async list(limit: number): Promise<CacheEntryInfo[]> {
    const ids = await this.#client.zrevrange(this.#keys.lru, 0, limit - 1);
    const now = this.#o.clock.now();
    const out: CacheEntryInfo[] = [];
    for (const id of ids) {
      const [head, size, hits] = await Promise.all([
        this.#client.getrangeBuffer(this.#keys.entry + id, 0, 511),
        this.#client.hget(this.#keys.sizes, id),
        this.#client.hget(this.#keys.hits, id),
      ]);
      const header = parseHeader(head);
      if (header === undefined) continue;
      out.push({
        keyPrefix: id.slice(0, 12),
        kind: header.kind,
        bytes: Number(size ?? 0),
        ageMs: now - header.createdAt,
        hits: Number(hits ?? 0),
      });
    }
    return out;
  }

  async close(): Promise<void> {
    this.#client.disconnect();
  }
}

interface Header {
  kind: 'json' | 'sse';
  contentType: string;
  createdAt: number;
  promptTokens: number | null;
  completionTokens: number | null;
}

function encode(value: CachedResponse): Buffer {
  const header: Header = {
    kind: value.kind,
    contentType: value.contentType,
    createdAt: value.createdAt,
    promptTokens: value.promptTokens ?? null,
    completionTokens: value.completionTokens ?? null,
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), value.body]);
}

function parseHeader(raw: Buffer): Header | undefined {
  const newline = raw.indexOf(0x0a);
  if (newline < 0) return undefined;
  try {
    const header = JSON.parse(raw.subarray(0, newline).toString('utf8')) as Header;
    return header.kind === 'json' || header.kind === 'sse' ? header : undefined;
  } catch {
    return undefined;
  }
}

function decode(raw: Buffer): CachedResponse | undefined {
  const header = parseHeader(raw);
  if (header === undefined) return undefined;
  const body = raw.subarray(raw.indexOf(0x0a) + 1);
  return {
    kind: header.kind,
    contentType: header.contentType,
    body,
    createdAt: header.createdAt,
    promptTokens: header.promptTokens ?? undefined,
    completionTokens: header.completionTokens ?? undefined,
  };
}
