import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cacheDirectives, cacheKey, isCacheable } from '../../src/gateway/cache/cache-key.js';
import type { CachedResponse } from '../../src/gateway/cache/cache-store.js';
import { DiskCacheStore } from '../../src/gateway/cache/disk-store.js';
import { MemoryCacheStore } from '../../src/gateway/cache/memory-store.js';
import { ManualClock, systemClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { chatBody, GATEWAY_KEY, MODEL, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], temperature: 0 };

describe('cacheKey', () => {
  it('differs for every parameter that changes the answer', () => {
    const variants: Array<Record<string, unknown>> = [
      {},
      { temperature: 0.7 },
      { seed: 1 },
      { max_tokens: 5 },
      { stop: ['x'] },
      { top_p: 0.9 },
      { n: 2 },
      { tools: [{ type: 'function', function: { name: 'f' } }] },
      { tool_choice: 'none' },
      { response_format: { type: 'json_object' } },
      { logit_bias: { '50256': -100 } },
      { stream: true },
      { messages: [{ role: 'user', content: 'hi!' }] },
    ];
    const keys = variants.map((v) => cacheKey('chat', MODEL, { ...base, ...v }));
    assert.equal(new Set(keys).size, variants.length);
    assert.notEqual(cacheKey('chat', MODEL, base), cacheKey('completions', MODEL, base));
    assert.notEqual(cacheKey('chat', MODEL, base), cacheKey('chat', 'other-model', base));
    assert.notEqual(cacheKey('chat', MODEL, base, 'key_aaaaaa'), cacheKey('chat', MODEL, base, 'key_bbbbbb'));
    assert.notEqual(cacheKey('chat', MODEL, base, 'key_aaaaaa'), cacheKey('chat', MODEL, base));
  });

  it('is SHA-256 over route, NUL, model, NUL, canonical body (entries persisted by earlier versions stay valid)', () => {
    const h = createHash('sha256');
    for (const part of [
      'chat',
      '\u0000',
      MODEL,
      '\u0000',
      '{"messages":[{"content":"hi","role":"user"}],"model":"' + MODEL + '","temperature":0}',
    ])
      h.update(part);
    assert.equal(cacheKey('chat', MODEL, base), h.digest('hex'));
  });

  it('treats an omitted parameter and its default as different requests', () => {
    const { temperature: _t, ...omitted } = base;
    assert.notEqual(
      cacheKey('chat', MODEL, omitted),
      cacheKey('chat', MODEL, { ...omitted, temperature: 1 }),
    );
  });

  it('ignores key order at every depth', () => {
    const a = {
      model: MODEL,
      temperature: 0,
      messages: [{ role: 'user', content: 'hi' }],
      response_format: { type: 'json_schema', json_schema: { name: 'a', strict: true } },
    };
    const b = {
      response_format: { json_schema: { strict: true, name: 'a' }, type: 'json_schema' },
      messages: [{ content: 'hi', role: 'user' }],
      temperature: 0,
      model: MODEL,
    };
    assert.equal(cacheKey('chat', MODEL, a), cacheKey('chat', MODEL, b));
  });
});

describe('cache policy', () => {
  it('deterministic: temperature 0 or a seed, one choice; embeddings always', () => {
    assert.equal(isCacheable('deterministic', 'chat', { temperature: 0 }), true);
    assert.equal(isCacheable('deterministic', 'chat', { seed: 4, temperature: 0.8 }), true);
    assert.equal(isCacheable('deterministic', 'chat', {}), false, 'omitted temperature means 1.0');
    assert.equal(isCacheable('deterministic', 'chat', { temperature: 0, n: 2 }), false);
    assert.equal(isCacheable('deterministic', 'completions', { temperature: 0, best_of: 3 }), false);
    assert.equal(isCacheable('deterministic', 'embeddings', {}), true);
    assert.equal(isCacheable('all', 'chat', {}), true);
    assert.equal(isCacheable('off', 'embeddings', {}), false);
  });

  it('reads Cache-Control directives', () => {
    assert.deepEqual(cacheDirectives('no-cache'), { noCache: true, noStore: false });
    assert.deepEqual(cacheDirectives('No-Store, max-age=0'), { noCache: false, noStore: true });
    assert.deepEqual(cacheDirectives('private'), { noCache: false, noStore: false });
  });
});

function entry(bytes: number, createdAt = 0): CachedResponse {
  return {
    kind: 'json',
    contentType: 'application/json',
    body: Buffer.alloc(bytes, 0x61),
    createdAt,
    promptTokens: 1,
    completionTokens: 1,
  };
}

describe('MemoryCacheStore', () => {
  it('evicts the least recently used past the entry cap', () => {
    const store = new MemoryCacheStore({
      maxEntries: 2,
      maxBytes: 1 << 20,
      maxEntryBytes: 1 << 16,
      ttlMs: 60_000,
      clock: systemClock,
    });
    store.set('a', entry(10, Date.now()));
    store.set('b', entry(10, Date.now()));
    store.get('a');
    store.set('c', entry(10, Date.now()));
    assert.ok(store.get('a'));
    assert.equal(store.get('b'), undefined);
    assert.equal(store.stats().evictions, 1);
  });

  it('evicts by bytes and refuses entries over the entry cap', () => {
    const store = new MemoryCacheStore({
      maxEntries: 100,
      maxBytes: 3000,
      maxEntryBytes: 2000,
      ttlMs: 60_000,
      clock: systemClock,
    });
    store.set('a', entry(1000, Date.now()));
    store.set('b', entry(1000, Date.now()));
    store.set('c', entry(1000, Date.now()));
    assert.equal(store.get('a'), undefined);
    assert.ok(store.stats().bytes <= 3000);
    store.set('huge', entry(5000, Date.now()));
    assert.equal(store.get('huge'), undefined);
  });

  it('expires entries after the TTL (simulated time)', () => {
    const clock = new ManualClock(1000);
    const store = new MemoryCacheStore({
      maxEntries: 10,
      maxBytes: 1 << 20,
      maxEntryBytes: 1 << 16,
      ttlMs: 5000,
      clock,
    });
    store.set('a', entry(10, clock.now()));
    clock.advance(4999);
    assert.ok(store.get('a'));
    clock.advance(1);
    assert.equal(store.get('a'), undefined);
  });

  it('checks its options at construction', () => {
    assert.throws(
      () =>
        new MemoryCacheStore({
          maxEntries: 0,
          maxBytes: 10,
          maxEntryBytes: 10,
          ttlMs: 1,
          clock: systemClock,
        }),
      TypeError,
    );
    assert.throws(
      () =>
        new MemoryCacheStore({
          maxEntries: 1,
          maxBytes: 10,
          maxEntryBytes: 20,
          ttlMs: 1,
          clock: systemClock,
        }),
      TypeError,
    );
  });
});

describe('response cache in the gateway', () => {
  const gateways: TestGateway[] = [];
  after(async () => {
    for (const gw of gateways) await gw.close();
  });
  async function gateway(options: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
    const gw = await startTestGateway({
      ...options,
      config: { rate_limit_requests: 10_000, ...options.config },
    });
    gateways.push(gw);
    return gw;
  }
  const chats = (gw: TestGateway) => gw.pod!.requests.filter((r) => r.path === '/v1/chat/completions').length;

  it('serves a deterministic request from the cache the second time, identical body', async () => {
    const gw = await gateway();
    const body = chatBody('cache me', { temperature: 0 });
    const first = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    const second = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(first.headers.get('x-cache'), 'MISS');
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.equal(await second.text(), await first.text());
    assert.equal(chats(gw), 1);
  });

  it("cache_scope key: each gateway key has its own entries; shared (default): a teammate's identical request is a hit", async () => {
    const other = 'gw_second_key_for_cache_scope_0001';
    const body = chatBody('scoped', { temperature: 0 });
    const ask = (gw: TestGateway, key: string) =>
      gw.api('/v1/chat/completions', {
        method: 'POST',
        json: body,
        headers: { authorization: `Bearer ${key}` },
      });
    const scoped = await gateway({ keys: [GATEWAY_KEY, other], config: { cache_scope: 'key' } });
    assert.equal((await ask(scoped, GATEWAY_KEY)).headers.get('x-cache'), 'MISS');
    assert.equal(
      (await ask(scoped, other)).headers.get('x-cache'),
      'MISS',
      "another key never sees the first key's entry",
    );
    assert.equal((await ask(scoped, GATEWAY_KEY)).headers.get('x-cache'), 'HIT');
    assert.equal((await ask(scoped, other)).headers.get('x-cache'), 'HIT');
    assert.equal(chats(scoped), 2);
    const shared = await gateway({ keys: [GATEWAY_KEY, other] });
    assert.equal((await ask(shared, GATEWAY_KEY)).headers.get('x-cache'), 'MISS');
    assert.equal((await ask(shared, other)).headers.get('x-cache'), 'HIT');
    assert.equal(chats(shared), 1);
  });

  it('never caches a sampled request in deterministic mode', async () => {
    const gw = await gateway();
    for (let i = 0; i < 2; i++) {
      const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('sampled') });
      assert.equal(res.headers.get('x-cache'), 'BYPASS');
      await res.arrayBuffer();
    }
    assert.equal(chats(gw), 2);
  });

  it('honours Cache-Control no-cache (skip the read) and no-store (skip the write)', async () => {
    const gw = await gateway();
    const body = chatBody('directives', { temperature: 0 });
    const noStore = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: body,
      headers: { 'cache-control': 'no-store' },
    });
    assert.equal(noStore.headers.get('x-cache'), 'MISS');
    await noStore.arrayBuffer();
    const noCache = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: body,
      headers: { 'cache-control': 'no-cache' },
    });
    assert.equal(noCache.headers.get('x-cache'), 'BYPASS');
    await noCache.arrayBuffer();
    assert.equal(chats(gw), 2, 'no-store stored nothing, no-cache read nothing');
    const plain = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(plain.headers.get('x-cache'), 'HIT', 'the no-cache request did store its answer');
  });

  it('replays a cached stream with the same events and [DONE]', async () => {
    const gw = await gateway({ pod: { chunkDelayMs: 2 } });
    const body = chatBody('stream me', {
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const first = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    const live = await first.text();
    const second = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.match(second.headers.get('content-type') ?? '', /^text\/event-stream/);
    const replay = await second.text();
    assert.equal(replay, live);
    assert.match(replay, /data: \[DONE\]\n\n$/);
    assert.equal(chats(gw), 1);
  });

  it('never stores a stream that failed or was aborted', async () => {
    const gw = await gateway({ pod: { chunkDelayMs: 20, chunks: 50 } });
    gw.pod!.setFault({ kind: 'die_mid_stream', afterChunks: 2 });
    const body = chatBody('fragile', { temperature: 0, stream: true });
    assert.match(
      await (await gw.api('/v1/chat/completions', { method: 'POST', json: body })).text(),
      /"error"/,
    );
    gw.pod!.setFault({ kind: 'none' });
    const controller = new AbortController();
    const aborted = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: body,
      signal: controller.signal,
    });
    await aborted.body!.getReader().read();
    controller.abort();
    await new Promise((r) => setTimeout(r, 100));
    const third = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(third.headers.get('x-cache'), 'MISS');
    await third.text();
    assert.equal((await gw.cache!.store.stats()).entries, 1, 'only the complete third stream');
  });

  it('coalesces 10 concurrent identical misses into one upstream call (non-streaming and streaming)', async () => {
    const gw = await gateway({ pod: { chunkDelayMs: 5 } });
    gw.pod!.setFault({ kind: 'delay', ms: 150 });
    const body = chatBody('together', { temperature: 0 });
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        gw
          .api('/v1/chat/completions', { method: 'POST', json: body })
          .then(async (r) => ({ status: r.status, cache: r.headers.get('x-cache'), text: await r.text() })),
      ),
    );
    assert.equal(chats(gw), 1);
    assert.equal(new Set(answers.map((a) => a.text)).size, 1);
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(10).fill(200),
    );
    assert.equal(answers.filter((a) => a.cache === 'MISS').length, 1);
    const stream = chatBody('together, streamed', { temperature: 0, stream: true });
    const texts = await Promise.all(
      Array.from({ length: 10 }, () =>
        gw.api('/v1/chat/completions', { method: 'POST', json: stream }).then((r) => r.text()),
      ),
    );
    assert.equal(chats(gw), 2);
    assert.equal(new Set(texts).size, 1);
    assert.match(texts[0]!, /data: \[DONE\]\n\n$/);
  });

  it('counts hits, misses, bypasses, entries and bytes in /metrics', async () => {
    const gw = await gateway();
    const body = chatBody('metrics', { temperature: 0 });
    for (let i = 0; i < 3; i++)
      await (await gw.api('/v1/chat/completions', { method: 'POST', json: body })).arrayBuffer();
    await (await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('sampled') })).arrayBuffer();
    const text = await (await gw.api('/metrics')).text();
    assert.match(text, /gateway_cache_requests_total\{result="hit"\} 2/);
    assert.match(text, /gateway_cache_requests_total\{result="miss"\} 1/);
    assert.match(text, /gateway_cache_requests_total\{result="bypass"\} 1/);
    assert.match(text, /gateway_cache_entries 1/);
    assert.match(text, /gateway_cache_bytes [1-9]\d*/);
  });

  it('with cache_mode off stores nothing and sends no X-Cache', async () => {
    const cacheDir = join(dir, 'off');
    const gw = await gateway({ config: { cache_mode: 'off', cache_dir: cacheDir } });
    const res = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: chatBody('x', { temperature: 0 }),
    });
    assert.equal(res.headers.get('x-cache'), null);
    assert.equal(existsSync(cacheDir), false, 'off leaves nothing on disk');
  });
});

describe('disk persistence', () => {
  it('survives a restart (files 0600, dir 0700) and drops corrupted entries instead of serving them', async () => {
    const cacheDir = join(dir, 'disk');
    const body = chatBody('persist me', { temperature: 0 });
    const first = await startTestGateway({ config: { cache_dir: cacheDir } });
    const original = await (await first.api('/v1/chat/completions', { method: 'POST', json: body })).text();
    await (first.cache!.store as DiskCacheStore).flush();
    await first.close();
    const files = readdirSync(cacheDir);
    assert.equal(files.length, 1);
    assert.equal(statSync(join(cacheDir, files[0]!)).mode & 0o777, 0o600);
    assert.equal(statSync(cacheDir).mode & 0o777, 0o700);
    writeFileSync(join(cacheDir, `${'f'.repeat(64)}.entry`), '{"v":1,"key":"ffff"}\ngarbage');

    const second = await startTestGateway({ config: { cache_dir: cacheDir } });
    try {
      const res = await second.api('/v1/chat/completions', { method: 'POST', json: body });
      assert.equal(res.headers.get('x-cache'), 'HIT');
      assert.equal(await res.text(), original);
      assert.equal(second.pod!.requests.filter((r) => r.path === '/v1/chat/completions').length, 0);
      assert.deepEqual((second.cache!.store as DiskCacheStore).dropped, [`${'f'.repeat(64)}.entry`]);
      assert.equal(readdirSync(cacheDir).length, 1);
    } finally {
      await second.close();
    }
  });

  it('drops an entry whose body was altered', () => {
    const cacheDir = join(dir, 'tamper');
    const options = {
      maxEntries: 10,
      maxBytes: 1 << 20,
      maxEntryBytes: 1 << 16,
      ttlMs: 60_000,
      clock: systemClock,
    };
    const store = new DiskCacheStore(cacheDir, options, silentLogger());
    const key = 'a'.repeat(64);
    store.set(key, entry(100, Date.now()));
    return store.flush().then(() => {
      const file = join(cacheDir, `${key}.entry`);
      const raw = readFileSync(file);
      raw[raw.length - 1] = 0x62;
      writeFileSync(file, raw);
      const reopened = new DiskCacheStore(cacheDir, options, silentLogger());
      assert.equal(reopened.get(key), undefined);
      assert.deepEqual(reopened.dropped, [`${key}.entry`]);
    });
  });
});
