import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisCacheStore } from '../../src/gateway/cache/redis-store.js';
import type { LimiterStore } from '../../src/gateway/rate-limit/limiter-store.js';
import { MemorySlidingLogStore } from '../../src/gateway/rate-limit/memory-store.js';
import { RedisSlidingLogStore } from '../../src/gateway/rate-limit/redis-store.js';
import { connectRedis } from '../../src/gateway/redis-client.js';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { ManualClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { chatBody, GATEWAY_KEY, MODEL, POD_KEY } from '../helpers/gateway.js';
import { captureLogs } from '../helpers/log-capture.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

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

/** One behavioural suite, run against both limiter stores. */
for (const [name, make] of [
  ['memory', async () => new MemorySlidingLogStore()],
  [
    'redis',
    async () =>
      new RedisSlidingLogStore({
        client: await client(),
        prefix: `t${Math.random().toString(36).slice(2)}:`,
        fallback: 'fail-closed',
        local: new MemorySlidingLogStore(),
        logger: silentLogger(),
        time: 'caller',
      }),
  ],
] as Array<[string, () => Promise<LimiterStore>]>) {
  describe(`sliding-log limiter contract (${name})`, () => {
    it('allows exactly limit per sliding window and reports the reset', async () => {
      const store = await make();
      for (let i = 0; i < 3; i++) assert.equal((await store.hit('k', 3, 1000, 100 + i)).allowed, true);
      const refused = await store.hit('k', 3, 1000, 500);
      assert.deepEqual(refused, { allowed: false, limit: 3, remaining: 0, resetMs: 600 });
      assert.equal((await store.hit('k', 3, 1000, 1100)).allowed, true, 'the first left the window');
      assert.equal((await store.hit('k', 3, 1000, 1100)).allowed, false);
    });
    it('does not count refused requests, and peek counts nothing', async () => {
      const store = await make();
      await store.hit('p', 1, 1000, 0);
      for (let t = 1; t < 1000; t += 250) assert.equal((await store.hit('p', 1, 1000, t)).allowed, false);
      assert.equal((await store.peek('p', 1, 1000, 999)).remaining, 0);
      assert.equal((await store.hit('p', 1, 1000, 1000)).allowed, true);
      assert.equal((await store.peek('fresh', 5, 1000, 0)).remaining, 5);
      assert.equal((await store.peek('fresh', 5, 1000, 0)).remaining, 5);
    });
  });
}

describe('RedisCacheStore', () => {
  it('stores namespaced entries with TTL, keeps the byte and entry budgets, and counts evictions', async () => {
    const c = await client();
    const clock = new ManualClock(Date.now());
    const store = new RedisCacheStore({
      client: c,
      prefix: 'cachetest:',
      maxEntries: 3,
      maxBytes: 3500,
      maxEntryBytes: 2000,
      ttlMs: 60_000,
      clock,
      logger: silentLogger(),
    });
    const entry = (n: number) => ({
      kind: 'json' as const,
      contentType: 'application/json',
      body: Buffer.alloc(n, 0x61),
      createdAt: clock.now(),
      promptTokens: 1,
      completionTokens: 2,
    });
    await store.set('a'.repeat(64), entry(900));
    const got = await store.get('a'.repeat(64));
    assert.equal(got?.body.length, 900);
    assert.equal(got?.completionTokens, 2);
    const ttl = await c.pttl(`cachetest:c:${'a'.repeat(64)}`);
    assert.ok(ttl > 0 && ttl <= 60_000);
    clock.advance(1);
    await store.set('b'.repeat(64), entry(900));
    clock.advance(1);
    await store.set('c'.repeat(64), entry(900));
    clock.advance(1);
    await store.get('a'.repeat(64)); // a is now the most recently used
    clock.advance(1);
    await store.set('d'.repeat(64), entry(900)); // over 3500 bytes (each ~1010 with its header): the LRU (b) goes
    assert.equal(await store.get('b'.repeat(64)), undefined);
    assert.ok(await store.get('a'.repeat(64)));
    const stats = await store.stats();
    assert.ok(stats.bytes !== undefined && stats.bytes <= 3500, String(stats.bytes));
    assert.equal(stats.evictions, 1);
    await store.set('e'.repeat(64), entry(5000));
    assert.equal(await store.get('e'.repeat(64)), undefined, 'over the entry cap');
    assert.ok((await c.keys('*')).every((k) => k.startsWith('cachetest:') || !k.includes(':c:')));
    const listed = await store.list(10);
    assert.equal(listed[0]?.keyPrefix, 'd'.repeat(12));
  });
});

describe('several gateways, one Redis', () => {
  let pod: VllmStandin;
  const children: ChildProcess[] = [];
  before(async () => {
    pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY });
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await pod.close();
  });

  async function gatewayProcess(): Promise<string> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '../../src/cli/main.ts'), 'gateway', '--port', '0'],
      {
        env: {
          PATH: process.env.PATH,
          RUNPOD_LLM_HOME: join(import.meta.dirname, '../../.scratch/redis-home'),
          UPSTREAM_URL: `${pod.url}/v1`,
          UPSTREAM_API_KEY: POD_KEY,
          GATEWAY_API_KEYS: GATEWAY_KEY,
          REDIS_URL: redis.url,
          REDIS_PREFIX: 'multi:',
          RATE_LIMIT_REQUESTS: '60',
          KEY_RATE_LIMIT_REQUESTS: '60',
          LOG_LEVEL: 'silent',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.push(child);
    let stderr = '';
    return new Promise((resolve, reject) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        const m = /listening on (http:\/\/\S+\/v1)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`gateway exited ${code}: ${stderr}`)));
    });
  }

  it('three gateway processes enforce 60 per minute in total, not 180', async () => {
    const urls = await Promise.all([gatewayProcess(), gatewayProcess(), gatewayProcess()]);
    const statuses: number[] = [];
    for (let i = 0; i < 90; i++) {
      const res = await fetch(`${urls[i % 3]}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(chatBody(`n${i}`)),
      });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.equal(statuses.filter((s) => s === 200).length, 60);
    assert.equal(statuses.filter((s) => s === 429).length, 30);
  });

  it('share the response cache', async () => {
    const config = { redis_prefix: 'shared:', rate_limit_requests: 1000 };
    const ra = await client();
    const rb = await client();
    const { buildApp } = await import('../../src/gateway/app.js');
    const { defaultConfig } = await import('../../src/config/schema.js');
    const { staticRouteSource } = await import('../../src/gateway/upstream/route-source.js');
    const make = (r: Redis) =>
      buildApp({
        config: defaultConfig({ ...config }),
        logger: silentLogger(),
        routes: staticRouteSource(`${pod.url}/v1`, POD_KEY, MODEL),
        keys: [GATEWAY_KEY],
        redis: r,
        probe: false,
      });
    const [ga, gb] = await Promise.all([make(ra), make(rb)]);
    try {
      const body = chatBody('shared cache', { temperature: 0 });
      const headers = { authorization: `Bearer ${GATEWAY_KEY}` };
      const first = await ga.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: body,
        headers,
      });
      const second = await gb.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: body,
        headers,
      });
      assert.equal(first.headers['x-cache'], 'MISS');
      assert.equal(second.headers['x-cache'], 'HIT');
      assert.equal(second.body, first.body);
    } finally {
      await ga.app.close();
      await gb.app.close();
    }
  });
});

describe('several gateways, one Redis: the token limit', () => {
  let pod: VllmStandin;
  before(async () => {
    pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY });
  });
  after(async () => {
    await pod.close();
  });

  it('key_rate_limit_tokens is one budget for the key across replicas, not one per gateway', async () => {
    const { buildApp } = await import('../../src/gateway/app.js');
    const { defaultConfig } = await import('../../src/config/schema.js');
    const { staticRouteSource } = await import('../../src/gateway/upstream/route-source.js');
    const make = async () =>
      buildApp({
        config: defaultConfig({ redis_prefix: 'tokens:', key_rate_limit_tokens: 40 }),
        logger: silentLogger(),
        routes: staticRouteSource(`${pod.url}/v1`, POD_KEY, MODEL),
        keys: [GATEWAY_KEY],
        redis: await client(),
        probe: false,
      });
    const [ga, gb] = await Promise.all([make(), make()]);
    try {
      const ask = (app: typeof ga.app, n: number) =>
        app.inject({
          method: 'POST',
          url: '/v1/chat/completions',
          payload: chatBody(`tokens ${n}`),
          headers: { authorization: `Bearer ${GATEWAY_KEY}` },
        });
      // Replica A spends the key's budget (each answer reports its usage)...
      let spent = 0;
      for (let i = 0; spent < 40 && i < 20; i++) {
        const res = await ask(ga.app, i);
        assert.equal(res.statusCode, 200, res.body);
        spent += (JSON.parse(res.body) as { usage: { total_tokens: number } }).usage.total_tokens;
      }
      assert.ok(spent >= 40, `spent ${spent}`);
      // ...and replica B, which served nothing for this key, refuses its very first request (the
      // usage is booked in Redis just after each answer: give it a moment).
      await new Promise((r) => setTimeout(r, 200));
      const refused = await ask(gb.app, 99);
      assert.equal(refused.statusCode, 429, refused.body);
      assert.match(refused.body, /Token rate limit reached: 40 tokens per 60 s/);
      assert.equal(refused.headers['x-ratelimit-limit-tokens'], '40');
      assert.equal(refused.headers['x-ratelimit-remaining-tokens'], '0');
    } finally {
      await ga.app.close();
      await gb.app.close();
    }
  });
});

describe('Redis outage and recovery', () => {
  it('keeps serving with the local limiter and no cache, logs the outage once, and returns to Redis', async () => {
    const logs = captureLogs();
    const r = await connectRedis(redis.url, logs.logger);
    const pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY });
    const { buildApp } = await import('../../src/gateway/app.js');
    const { defaultConfig } = await import('../../src/config/schema.js');
    const { staticRouteSource } = await import('../../src/gateway/upstream/route-source.js');
    const { app } = await buildApp({
      config: defaultConfig({ redis_prefix: 'outage:', rate_limit_requests: 1000 }),
      logger: logs.logger,
      routes: staticRouteSource(`${pod.url}/v1`, POD_KEY, MODEL),
      keys: [GATEWAY_KEY],
      redis: r,
      probe: false,
    });
    const send = () =>
      app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: chatBody('outage', { temperature: 0 }),
        headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      });
    try {
      assert.equal((await send()).statusCode, 200);
      await redis.stop();
      for (let i = 0; i < 5; i++) {
        const res = await send();
        assert.equal(res.statusCode, 200, 'still serving');
        assert.ok(res.headers['x-ratelimit-remaining'] !== undefined, 'still limited (locally)');
      }
      const down = logs.lines().filter((l) => l.event === 'redis_unavailable');
      assert.deepEqual(
        down.map((l) => l.component).sort(),
        ['cache', 'rate_limiter'],
        'once per component, not per request',
      );
      // The cache's size is unknown while Redis is down: absent from both views, never 0.
      const auth = { authorization: `Bearer ${GATEWAY_KEY}` };
      const text = (await app.inject({ method: 'GET', url: '/metrics', headers: auth })).body;
      assert.match(text, /# TYPE gateway_cache_entries gauge/);
      assert.doesNotMatch(text, /^gateway_cache_(entries|bytes) /m, 'no unmeasured gauge value');
      const json = (await app.inject({ method: 'GET', url: '/metrics?format=json', headers: auth })).json<{
        cache_entries: unknown;
        cache_size_bytes: unknown;
      }>();
      assert.deepEqual([json.cache_entries, json.cache_size_bytes], [null, null]);
      await redis.start();
      for (let i = 0; i < 100 && r.status !== 'ready'; i++) await new Promise((res) => setTimeout(res, 50));
      assert.equal(r.status, 'ready');
      assert.equal((await send()).statusCode, 200);
      assert.equal(
        logs.lines().filter((l) => l.event === 'redis_recovered' && l.component === 'rate_limiter').length,
        1,
      );
      const keys = await r.keys('outage:rl:*');
      assert.ok(keys.length > 0, 'the limiter writes to Redis again');
      const back = (
        await app.inject({
          method: 'GET',
          url: '/metrics',
          headers: { authorization: `Bearer ${GATEWAY_KEY}` },
        })
      ).body;
      assert.match(back, /^gateway_cache_entries \d+$/m, 'measured again once Redis answers');
    } finally {
      await app.close();
      await pod.close();
    }
  });
});

describe('Redis limiter, fail-open during an outage', () => {
  it('lets requests through uncounted and reports no remaining count (unknown, not the full limit)', async () => {
    const down = await startTestRedis();
    const c = await connectRedis(down.url, silentLogger());
    clients.push(c);
    await down.stop();
    const logs = captureLogs();
    const store = new RedisSlidingLogStore({
      client: c,
      prefix: 'open:',
      fallback: 'fail-open',
      local: new MemorySlidingLogStore(),
      logger: logs.logger,
      time: 'caller',
    });
    const decision = await store.hit('k', 5, 1000, 0);
    assert.deepEqual(decision, { allowed: true, limit: 5 });
    assert.equal(logs.lines().filter((l) => l.event === 'redis_unavailable').length, 1);
  });
});
