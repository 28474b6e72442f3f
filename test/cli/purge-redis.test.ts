import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RedisCacheStore } from '../../src/gateway/cache/redis-store.js';
import { connectRedis } from '../../src/gateway/redis-client.js';
import { systemClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { cli } from './cli-rig.js';

describe('runpod-llm purge --cache with the cache shared in Redis (redis_url)', () => {
  let redis: TestRedis;
  const home = mkdtempSync(join(tmpdir(), 'purge-redis-'));
  const env = (url: string) => ({
    RUNPOD_LLM_HOME: home,
    REDIS_URL: url,
    REDIS_PREFIX: 'purgetest:',
    RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
  });
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('removes every cache entry under the prefix (dry run first), and leaves the rate-limit windows and other prefixes', async () => {
    const client = await connectRedis(redis.url, silentLogger());
    try {
      const store = new RedisCacheStore({
        client,
        prefix: 'purgetest:',
        maxEntries: 100,
        maxBytes: 1_000_000,
        maxEntryBytes: 10_000,
        ttlMs: 600_000,
        clock: systemClock,
        logger: silentLogger(),
      });
      for (const k of ['a', 'b', 'c'])
        await store.set(k.repeat(64), {
          kind: 'json',
          contentType: 'application/json',
          body: Buffer.alloc(1_000, 0x61),
          createdAt: Date.now(),
          promptTokens: 1,
          completionTokens: 1,
        });
      await client.set('purgetest:rl:key:abc', '1');
      await client.set('otherapp:c:keep', '1');
      const entries = async () => (await client.keys('purgetest:c:*')).filter((k) => !k.includes(':c:_'));
      assert.equal((await entries()).length, 3);

      const dry = await cli(['purge', '--cache', '--dry-run', '--json'], env(redis.url));
      assert.equal(dry.code, 0, dry.stderr);
      const dryReport = JSON.parse(dry.stdout);
      assert.equal(dryReport.redisCache.removed, 3);
      assert.ok(dryReport.redisCache.bytes >= 3_000, JSON.stringify(dryReport.redisCache));
      assert.equal((await entries()).length, 3, 'a dry run removes nothing');

      const run = await cli(['purge', '--cache'], env(redis.url));
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /shared cache \(Redis redis:\/\/127\.0\.0\.1:\d+\/?\): removed 3 entries/);
      assert.deepEqual(await client.keys('purgetest:c:*'), [], 'entries and their bookkeeping are gone');
      assert.equal(await client.get('purgetest:rl:key:abc'), '1', 'rate-limit windows stay');
      assert.equal(await client.get('otherapp:c:keep'), '1', 'other prefixes stay');
      // The store starts again from an empty budget.
      assert.equal((await store.stats()).entries, 0);
    } finally {
      client.disconnect();
    }
  });

  it('Redis unreachable: exit 3 with the cause and the fix, not "nothing to remove"', async () => {
    const run = await cli(['purge', '--cache'], env('redis://127.0.0.1:9/'));
    assert.equal(run.code, 3, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /Redis at redis:\/\/127\.0\.0\.1:9\/? is not reachable/);
    assert.match(run.stderr, /runpod-llm purge --cache/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });
});
