import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../shared/logger.js';
import { gatewayError } from '../errors.js';
import { RedisOutageLog } from '../redis-client.js';
import type { LimiterStore, RateDecision } from './limiter-store.js';

/*
 * Exact sliding-log limiter in Redis, shared by every gateway replica: one sorted set per key
 * (score = request time), trimmed, counted and appended in ONE Lua script, so N replicas enforce
 * one limit — never N limits, never read-local/write-shared (the LiteLLM multi-replica bug).
 * Time comes from Redis (`TIME`) by default, so replicas with skewed clocks still agree.
 *
 * When Redis cannot be reached, the configured fallback applies: `local` (a memory limiter per
 * replica), `fail-closed` (503), or `fail-open`. The outage is logged once as a security event,
 * and its end once more.
 */

const SCRIPT = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  allowed = 1
  if ARGV[5] == 'hit' then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window)
    count = count + 1
  end
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = 0
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, count, reset}
`;

type Fallback = 'local' | 'fail-closed' | 'fail-open';

interface SlidingLogClient extends Redis {
  slidingLog(
    key: string,
    limit: number,
    windowMs: number,
    now: string,
    member: string,
    mode: string,
  ): Promise<[number, number, number]>;
}

export interface RedisLimiterOptions {
  client: Redis;
  prefix: string;
  fallback: Fallback;
  /** Used when `fallback` is `local`. */
  local: LimiterStore;
  logger: Logger;
  /** `redis` (default): Redis's clock; `caller`: the `now` passed in (tests in simulated time). */
  time?: 'redis' | 'caller';
}

export class RedisSlidingLogStore implements LimiterStore {
  readonly #client: SlidingLogClient;
  readonly #options: RedisLimiterOptions;
  readonly #outage: RedisOutageLog;

  constructor(options: RedisLimiterOptions) {
    if (options.prefix === '') throw new TypeError('prefix must not be empty');
    this.#options = options;
    options.client.defineCommand('slidingLog', { numberOfKeys: 1, lua: SCRIPT });
    this.#client = options.client as SlidingLogClient;
    this.#outage = new RedisOutageLog(
      options.logger,
      'rate_limiter',
      { down: 'rate limiting falls back', up: 'the shared rate limit is back' },
      { fallback: options.fallback },
    );
  }

  hit(key: string, limit: number, windowMs: number, now: number): Promise<RateDecision> {
    return this.#run('hit', key, limit, windowMs, now);
  }

  peek(key: string, limit: number, windowMs: number, now: number): Promise<RateDecision> {
    return this.#run('peek', key, limit, windowMs, now);
  }

  async close(): Promise<void> {
    this.#client.disconnect();
  }

  async #run(
    mode: 'hit' | 'peek',
    key: string,
    limit: number,
    windowMs: number,
    now: number,
  ): Promise<RateDecision> {
    const { prefix, time } = this.#options;
    try {
      const [allowed, count, reset] = await this.#client.slidingLog(
        `${prefix}rl:${key}`,
        limit,
        windowMs,
        time === 'caller' ? String(now) : '',
        randomUUID(),
        mode,
      );
      this.#outage.ok();
      return {
        allowed: allowed === 1,
        limit,
        remaining: Math.max(0, limit - count),
        resetMs: Math.max(0, reset),
      };
    } catch (err) {
      this.#outage.failed(err);
      switch (this.#options.fallback) {
        case 'local':
          return this.#options.local[mode](key, limit, windowMs, now);
        case 'fail-open':
          // Let it through uncounted: how many remain is unknown, so the answer says nothing.
          return { allowed: true, limit };
        case 'fail-closed':
          throw gatewayError(
            'GW_LIMITER_UNAVAILABLE',
            'the rate limiter is unavailable (Redis unreachable); try again shortly',
            { headers: { 'retry-after': '5' } },
          );
      }
    }
  }
}
