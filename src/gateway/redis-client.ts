import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.js';

/**
 * One ioredis client for the limiter and the cache. Commands fail fast while disconnected (no
 * offline queue: a request must never wait for Redis to come back), each command is bounded by a
 * timeout, and the client keeps reconnecting in the background.
 */
export async function connectRedis(url: string, logger: Logger, waitMs = 2_000): Promise<Redis> {
  // Imported here, only when Redis is configured: ioredis costs ≈ 8 MB of RSS to load.
  const { Redis } = await import('ioredis');
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 1_000,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
  });
  client.on('error', () => undefined); // outages are reported once by the stores, not per retry
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), waitMs).unref()),
    ]);
  } catch (err) {
    logger.error(
      { event: 'redis_unavailable', url: redactUrl(url), err: (err as Error).message },
      'Redis is not reachable at start; serving with the fallbacks until it is',
    );
  }
  return client;
}

/** A Redis URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = 'redacted';
    return u.toString();
  } catch {
    return 'redis://(unparseable)';
  }
}

/**
 * A Redis outage as one store sees it: logged once when it starts (error) and once when it ends
 * (warning), never per failed command, so a flapping Redis cannot flood the log.
 *
 * @example
 *   const outage = new RedisOutageLog(logger, 'cache', { down: 'the cache is bypassed', up: 'the shared cache is back' });
 *   try { …; outage.ok(); } catch (err) { outage.failed(err); }
 */
export class RedisOutageLog {
  #down = false;

  constructor(
    private readonly logger: Logger,
    private readonly component: string,
    private readonly says: { down: string; up: string },
    private readonly fields: Record<string, unknown> = {},
  ) {}

  ok(): void {
    if (!this.#down) return;
    this.#down = false;
    this.logger.warn(
      { event: 'redis_recovered', component: this.component },
      `Redis is reachable again: ${this.says.up}`,
    );
  }

  failed(err: unknown): void {
    if (this.#down) return;
    this.#down = true;
    this.logger.error(
      {
        event: 'redis_unavailable',
        component: this.component,
        ...this.fields,
        err: err instanceof Error ? err.message : String(err),
      },
      `Redis is unreachable: ${this.says.down}`,
    );
  }
}
