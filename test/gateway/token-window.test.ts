import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisTokenWindow } from '../../src/gateway/rate-limit/redis-token-window.js';
import { type TokenCounter, TokenWindow } from '../../src/gateway/rate-limit/token-window.js';
import { connectRedis } from '../../src/gateway/redis-client.js';
import { silentLogger } from '../../src/shared/logger.js';
import { captureLogs } from '../helpers/log-capture.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

const WINDOW = 60_000;
const T0 = 1_800_000_000_000; // a whole second

let redis: TestRedis;
const clients: Redis[] = [];
before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await redis.stop();
});
async function client(): Promise<Redis> {
  const c = await connectRedis(redis.url, silentLogger());
  clients.push(c);
  return c;
}
let prefixes = 0;
async function redisWindow(prefix = `tw${++prefixes}:`): Promise<RedisTokenWindow> {
  return new RedisTokenWindow({
    client: await client(),
    prefix,
    windowMs: WINDOW,
    local: new TokenWindow(WINDOW),
    logger: silentLogger(),
  });
}
/** Adds go to Redis without being awaited: wait until a check sees them. */
async function settled(w: TokenCounter, key: string, now: number, expected: number): Promise<void> {
  for (let i = 0; i < 100 && (await w.check(key, now, 1e9)).used !== expected; i++)
    await new Promise((r) => setTimeout(r, 5));
}

/** One behavioural table, run against the process's window and the shared one. */
for (const [name, make] of [
  ['memory', async () => new TokenWindow(WINDOW)],
  ['redis', () => redisWindow()],
] as const) {
  describe(`token window (${name})`, () => {
    it('sums a key within the window, drops what left it, and says when the key is below the limit again', async () => {
      const w: TokenCounter = await make();
      w.add('k', T0, 600);
      w.add('k', T0 + 10_000, 500);
      w.add('other', T0 + 10_000, 9_999);
      await settled(w, 'k', T0 + 10_000, 1_100);
      assert.deepEqual(await w.check('k', T0 + 10_000, 2_000), { used: 1_100, waitMs: 0 });
      // At the limit: wait until the first 600 leave (T0 + 60 s), then 500 < 1000.
      assert.deepEqual(await w.check('k', T0 + 20_000, 1_000), { used: 1_100, waitMs: 40_000 });
      // Both must leave before 400 fits: the second bucket leaves at T0 + 70 s.
      assert.deepEqual(await w.check('k', T0 + 20_000, 400), { used: 1_100, waitMs: 50_000 });
      assert.deepEqual(await w.check('k', T0 + 60_000, 1_000), { used: 500, waitMs: 0 });
      assert.deepEqual(await w.check('k', T0 + 71_000, 1_000), { used: 0, waitMs: 0 });
      assert.deepEqual(await w.check('nobody', T0, 1), { used: 0, waitMs: 0 });
    });
  });
}

describe('token window shared in Redis', () => {
  it('two replicas hold a key to one budget: tokens one adds, the other counts', async () => {
    const a = await redisWindow('shared1:');
    const b = await redisWindow('shared1:');
    a.add('key_1', T0, 700);
    b.add('key_1', T0 + 1_000, 400);
    await settled(b, 'key_1', T0 + 2_000, 1_100);
    assert.deepEqual(await a.check('key_1', T0 + 2_000, 1_000), { used: 1_100, waitMs: 58_000 });
    assert.deepEqual(await b.check('key_1', T0 + 2_000, 1_000), { used: 1_100, waitMs: 58_000 });
  });

  it('keeps one hash per key, trimmed to the window and expiring with it', async () => {
    const c = await client();
    const w = await redisWindow('trim1:');
    for (let s = 0; s < 90; s++) w.add('key_t', T0 + s * 1_000, 1);
    await settled(w, 'key_t', T0 + 89_000, 60);
    assert.ok((await c.hlen('trim1:tok:key_t')) <= 60, 'fields outside the window are deleted on read');
    const ttl = await c.pttl('trim1:tok:key_t');
    assert.ok(ttl > 0 && ttl <= 61_000, `expires with the window (${ttl} ms)`);
  });

  it('Redis gone: the process window answers (logged once), and the shared count is back when Redis is', async () => {
    const logs = captureLogs();
    const w = new RedisTokenWindow({
      client: await client(),
      prefix: 'outage1:',
      windowMs: WINDOW,
      local: new TokenWindow(WINDOW),
      logger: logs.logger,
    });
    w.add('key_o', T0, 300);
    await settled(w, 'key_o', T0, 300);
    await redis.stop();
    try {
      w.add('key_o', T0 + 1_000, 200);
      assert.deepEqual(await w.check('key_o', T0 + 1_000, 1_000), { used: 500, waitMs: 0 }, 'local window');
      assert.deepEqual(await w.check('key_o', T0 + 1_000, 1_000), { used: 500, waitMs: 0 });
      const down = logs.lines().filter((l) => l.event === 'redis_unavailable');
      assert.equal(down.length, 1, 'one line per outage');
      assert.equal(down[0]?.component, 'token_limit');
    } finally {
      await redis.start();
    }
    // Redis restarted without persistence: once the client is back, the shared (now empty) window
    // answers again, not the process's 500.
    let back = await w.check('key_o', T0 + 2_000, 1_000);
    for (let i = 0; i < 200 && back.used !== 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      back = await w.check('key_o', T0 + 2_000, 1_000);
    }
    assert.deepEqual(back, { used: 0, waitMs: 0 });
    assert.equal(logs.lines().filter((l) => l.event === 'redis_recovered').length, 1);
  });
});
