import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { clientKey } from '../../src/gateway/rate-limit/client-key.js';
import { rateLimitHeaders, tighter } from '../../src/gateway/rate-limit/headers.js';
import { MemorySlidingLogStore } from '../../src/gateway/rate-limit/memory-store.js';
import { ManualClock } from '../../src/shared/clock.js';
import { chatBody, startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('MemorySlidingLogStore', () => {
  it('allows exactly `limit` requests in any window of `windowMs`, sliding, not fixed', () => {
    const store = new MemorySlidingLogStore();
    // 30 at t=0, 30 at t=30s: the 61st at t=59.999s is refused, then one frees at t=60s.
    for (let i = 0; i < 30; i++) assert.equal(store.hit('k', 60, 60_000, 0).allowed, true);
    for (let i = 0; i < 30; i++) assert.equal(store.hit('k', 60, 60_000, 30_000).allowed, true);
    const refused = store.hit('k', 60, 60_000, 59_999);
    assert.equal(refused.allowed, false);
    assert.equal(refused.remaining, 0);
    assert.equal(refused.resetMs, 1);
    // At t=60s the first 30 leave the window: exactly 30 more fit, the 31st does not.
    for (let i = 0; i < 30; i++)
      assert.equal(store.hit('k', 60, 60_000, 60_000).allowed, true, `request ${i}`);
    assert.equal(store.hit('k', 60, 60_000, 60_000).allowed, false);
  });

  it('does not count refused requests (hammering does not extend the wait)', () => {
    const store = new MemorySlidingLogStore();
    store.hit('k', 1, 1000, 0);
    for (let t = 1; t < 1000; t += 100) assert.equal(store.hit('k', 1, 1000, t).allowed, false);
    assert.equal(store.hit('k', 1, 1000, 1000).allowed, true);
  });

  it('peek reports without counting', () => {
    const store = new MemorySlidingLogStore();
    store.hit('k', 2, 1000, 0);
    assert.equal(store.peek('k', 2, 1000, 1).remaining, 1);
    assert.equal(store.peek('k', 2, 1000, 1).remaining, 1);
    assert.equal(store.peek('other', 2, 1000, 1).remaining, 2);
  });

  it('sweeps idle keys and caps the number of keys', () => {
    const store = new MemorySlidingLogStore({ maxKeys: 100 });
    for (let i = 0; i < 250; i++) store.hit(`k${i}`, 5, 1000, 10);
    assert.ok(store.size <= 100, `size ${store.size}`);
    store.hit('late', 5, 1000, 5000); // a window later: every idle key is swept
    assert.equal(store.size, 1);
  });

  it('checks its options eagerly', () => {
    assert.throws(() => new MemorySlidingLogStore({ maxKeys: 0 }), TypeError);
    assert.throws(() => new MemorySlidingLogStore().hit('k', 0, 1000, 0), TypeError);
    assert.throws(() => new MemorySlidingLogStore().hit('k', 1, 0, 0), TypeError);
  });
});

describe('clientKey', () => {
  it('groups IPv6 by /64 and unwraps IPv4-mapped addresses', () => {
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), clientKey('2001:db8:1:2:ffff:1:2:3'));
    assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
    assert.equal(clientKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(clientKey('10.0.0.1'), '10.0.0.1');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
  });
});

describe('rate-limit headers', () => {
  it('writes X-RateLimit-* and the IETF RateLimit / RateLimit-Policy fields', () => {
    assert.deepEqual(rateLimitHeaders({ allowed: true, limit: 60, remaining: 12, resetMs: 4500 }, 60), {
      'x-ratelimit-limit': '60',
      'x-ratelimit-remaining': '12',
      'x-ratelimit-reset': '5',
      'ratelimit-policy': '"default";q=60;w=60',
      ratelimit: '"default";r=12;t=5',
    });
  });

  it('states only the policy for a request nobody counted (limiter store down, fail-open)', () => {
    assert.deepEqual(rateLimitHeaders({ allowed: true, limit: 60 }, 60), {
      'x-ratelimit-limit': '60',
      'ratelimit-policy': '"default";q=60;w=60',
    });
  });

  it('prefers a counted decision to an uncounted one, and a refusal to both', () => {
    const counted = { allowed: true, limit: 60, remaining: 3, resetMs: 10 };
    const uncounted = { allowed: true, limit: 60 };
    assert.equal(tighter(uncounted, counted), counted);
    assert.equal(tighter(counted, uncounted), counted);
    const refused = { allowed: false, limit: 60, remaining: 0, resetMs: 5 };
    assert.equal(tighter(uncounted, refused), refused);
  });
});

describe('gateway rate limiting (60 per 60 s, real sockets)', () => {
  let gw: TestGateway;
  let clock: ManualClock;
  before(async () => {
    clock = new ManualClock(1_000_000);
    // Authenticated requests count per key; at 60 here the numbers match the per-IP window's.
    gw = await startTestGateway({ clock, config: { key_rate_limit_requests: 60 } });
  });
  after(() => gw.close());

  it('answers the 61st request in the window with 429, Retry-After and the headers', async () => {
    for (let i = 1; i <= 60; i++) {
      const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody(`n${i}`) });
      assert.equal(res.status, 200, `request ${i}`);
      assert.equal(res.headers.get('x-ratelimit-remaining'), String(60 - i));
      await res.arrayBuffer();
      clock.advance(100);
    }
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('61') });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('x-ratelimit-limit'), '60');
    assert.equal(res.headers.get('x-ratelimit-remaining'), '0');
    assert.equal(res.headers.get('ratelimit-policy'), '"default";q=60;w=60');
    assert.equal(res.headers.get('ratelimit'), '"default";r=0;t=54');
    assert.equal(res.headers.get('retry-after'), '54');
    const body = (await res.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.match(body.error.message, /Retry after 54 s/);
    assert.equal(
      gw.pod!.requests.filter((r) => r.path === '/v1/chat/completions').length,
      60,
      'the refused request never reached the pod',
    );
    const events = gw.logs.lines().filter((l) => l.event === 'rate_limit_exceeded');
    assert.equal(events.length, 1);
    assert.equal(events[0]?.ip, '127.0.0.1');

    clock.advance(54_000); // the first request leaves the window
    const again = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('62') });
    assert.equal(again.status, 200);
  });

  it('/health shows the allowance without spending it', async () => {
    const a = (await (await fetch(`${gw.url}/health`)).json()) as { rate_limit: { remaining: number } };
    const b = (await (await fetch(`${gw.url}/health`)).json()) as { rate_limit: { remaining: number } };
    assert.equal(a.rate_limit.remaining, b.rate_limit.remaining);
  });
});

function postFrom(url: string, headers: Record<string, string>, localAddress = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/models`, { method: 'GET', headers, localAddress }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('client identity for the limiter', () => {
  it('ignores X-Forwarded-For from an untrusted peer (no dodging the limit)', async () => {
    const gw = await startTestGateway({ config: { rate_limit_requests: 3 } });
    try {
      const codes: number[] = [];
      // Without a valid key: the per-client window is what applies.
      for (let i = 0; i < 5; i++)
        codes.push(
          await postFrom(gw.url, {
            authorization: 'Bearer not_a_valid_key_0000000000',
            'x-forwarded-for': `203.0.113.${i}`,
          }),
        );
      assert.deepEqual(codes, [401, 401, 401, 429, 429]);
    } finally {
      await gw.close();
    }
  });

  it('honours X-Forwarded-For from a configured trusted proxy', async () => {
    // auth off so that only the per-client window applies (the per-key one is tested below)
    const gw = await startTestGateway({
      config: { key_rate_limit_requests: 1, trusted_proxies: ['127.0.0.1'], auth: 'none' },
      keys: [],
    });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 3; i++)
        codes.push(
          await postFrom(gw.url, {
            authorization: 'Bearer gw_test_key_5f1c9a7e3b2d4c6e8a0b',
            'x-forwarded-for': `203.0.113.${i}`,
          }),
        );
      assert.deepEqual(codes, [200, 200, 200]);
      const ips = gw.logs
        .lines()
        .filter((l) => l.msg === 'request')
        .map((l) => l.ip);
      assert.deepEqual(ips, ['203.0.113.0', '203.0.113.1', '203.0.113.2']);
    } finally {
      await gw.close();
    }
  });

  it('limits each gateway key across client addresses', async () => {
    const gw = await startTestGateway({
      config: { key_rate_limit_requests: 2, trusted_proxies: ['127.0.0.1'] },
    });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 3; i++)
        codes.push(
          await postFrom(gw.url, {
            authorization: 'Bearer gw_test_key_5f1c9a7e3b2d4c6e8a0b',
            'x-forwarded-for': `198.51.100.${i}`,
          }),
        );
      assert.deepEqual(codes, [200, 200, 429]);
    } finally {
      await gw.close();
    }
  });
});
