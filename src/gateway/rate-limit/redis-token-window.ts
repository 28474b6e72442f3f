import type { Redis } from 'ioredis';
import type { Logger } from '../../shared/logger.js';
import { RedisOutageLog } from '../redis-client.js';
import type { TokenCheck, TokenCounter, TokenWindow } from './token-window.js';

/*
 * `key_rate_limit_tokens` shared by every gateway replica through Redis, as the request limits
 * are: per key one hash of per-second buckets (`<prefix>tok:<key>`, field = the second, value =
 * tokens), added to and read in Lua so a read trims and sums in one step. N replicas then hold a
 * key to one token budget, not N. Seconds come from the caller's clock (replicas a second apart
 * disagree by one bucket at most). While Redis is unreachable the process's own window answers
 * (every add goes there too), logged once, and its end once more.
 */

const SCRIPT = `
local mode = ARGV[1]
local second = tonumber(ARGV[2])
local slots = tonumber(ARGV[3])
if mode == 'add' then
  redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], slots * 1000 + 1000)
  return {0, 0}
end
local limit = tonumber(ARGV[4])
local nowMs = tonumber(ARGV[5])
local oldest = second - slots + 1
local all = redis.call('HGETALL', KEYS[1])
local buckets = {}
local used = 0
for i = 1, #all, 2 do
  local s = tonumber(all[i])
  if s < oldest then
    redis.call('HDEL', KEYS[1], all[i])
  else
    local n = tonumber(all[i + 1])
    used = used + n
    table.insert(buckets, {s, n})
  end
end
local wait = 0
if used >= limit then
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local left = used
  for _, b in ipairs(buckets) do
    left = left - b[2]
    if left < limit then
      wait = math.max(0, (b[1] + slots) * 1000 - nowMs)
      break
    end
  end
end
return {used, wait}
`;

interface TokenClient extends Redis {
  tokenWindow(
    key: string,
    mode: 'add' | 'check',
    second: number,
    slots: number,
    amount: number,
    nowMs: number,
  ): Promise<[number, number]>;
}

export interface RedisTokenWindowOptions {
  client: Redis;
  prefix: string;
  windowMs: number;
  /** The process's own window: every add goes there too; it answers while Redis is unreachable. */
  local: TokenWindow;
  logger: Logger;
}

/**
 * The token window in Redis, shared by every replica.
 *
 * @example
 *   const tokens = new RedisTokenWindow({ client, prefix: 'rlm:', windowMs: 60_000, local: new TokenWindow(60_000), logger });
 *   tokens.add('key_ab12cd', Date.now(), 1500);
 *   await tokens.check('key_ab12cd', Date.now(), 10_000); // { used: 1500, waitMs: 0 }
 */
export class RedisTokenWindow implements TokenCounter {
  readonly windowMs: number;
  readonly #client: TokenClient;
  readonly #o: RedisTokenWindowOptions;
  readonly #slots: number;
  readonly #outage: RedisOutageLog;

  constructor(options: RedisTokenWindowOptions) {
    if (options.prefix === '') throw new TypeError('prefix must not be empty');
    this.#o = options;
    this.windowMs = options.windowMs;
    this.#slots = Math.max(1, Math.ceil(options.windowMs / 1000));
    options.client.defineCommand('tokenWindow', { numberOfKeys: 1, lua: SCRIPT });
    this.#client = options.client as TokenClient;
    this.#outage = new RedisOutageLog(options.logger, 'token_limit', {
      down: 'each gateway counts tokens in its own window until it is back',
      up: 'the shared token limit is back',
    });
  }

  add(key: string, now: number, tokens: number): void {
    if (!(tokens > 0)) return;
    this.#o.local.add(key, now, tokens);
    this.#client
      .tokenWindow(this.#key(key), 'add', Math.floor(now / 1000), this.#slots, Math.ceil(tokens), now)
      .then(
        () => this.#outage.ok(),
        (err: unknown) => this.#outage.failed(err),
      );
  }

  async check(key: string, now: number, limit: number): Promise<TokenCheck> {
    try {
      const [used, waitMs] = await this.#client.tokenWindow(
        this.#key(key),
        'check',
        Math.floor(now / 1000),
        this.#slots,
        limit,
        now,
      );
      this.#outage.ok();
      return { used, waitMs };
    } catch (err) {
      this.#outage.failed(err);
      return this.#o.local.check(key, now, limit);
    }
  }

  #key(key: string): string {
    return `${this.#o.prefix}tok:${key}`;
  }
}
