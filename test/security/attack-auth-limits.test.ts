import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { clientKey } from '../../src/gateway/rate-limit/client-key.js';
import { GATEWAY_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  assertEnvelope,
  assertLogsClean,
  assertRawRefusal,
  assertServing,
  rawRequest,
  securityEvents,
} from './attack-helpers.js';

/**
 * Attack battery, identity (SECURITY.md "Attack battery"): dodging the rate limit with
 * X-Forwarded-For or IPv6 address rotation, guessing keys, odd Authorization headers.
 */
describe('attack battery: limiter evasion and key guessing', () => {
  const gateways: TestGateway[] = [];
  after(async () => {
    for (const gw of gateways) await gw.close();
  });
  async function gateway(config: Parameters<typeof startTestGateway>[0]): Promise<TestGateway> {
    const gw = await startTestGateway(config);
    gateways.push(gw);
    return gw;
  }
  const models = (gw: TestGateway, headers: Record<string, string> = {}): Promise<Response> =>
    gw.api('/v1/models', { headers });
  // Valid keys are limited per key (key_rate_limit_requests), never per address; what the
  // per-client window stops is failed requests: a different wrong key per request, so only that
  // window can be what stops them.
  const KEYS = Array.from({ length: 10 }, (_, i) => `gw_rotating_key_${i}_0123456789`);
  const WRONG = KEYS.map((k) => `${k}_wrong`);

  it('X-Forwarded-For, X-Real-IP and Forwarded from an untrusted peer do not buy a fresh allowance', async () => {
    const gw = await gateway({ config: { rate_limit_requests: 3 }, keys: KEYS });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const spoof = `203.0.113.${i + 1}`;
      const res = await models(gw, {
        authorization: `Bearer ${WRONG[i]}`,
        'x-forwarded-for': spoof,
        'x-real-ip': spoof,
        forwarded: `for=${spoof}`,
      });
      statuses.push(res.status);
      if (res.status === 429) assertEnvelope(await res.text(), 'rate_limit_exceeded');
      else await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429]);
    const ips = new Set(
      gw.logs
        .lines()
        .filter((l) => l.msg === 'request')
        .map((l) => l.ip),
    );
    assert.deepEqual([...ips], ['127.0.0.1'], 'the socket peer is logged, never the spoofed address');
    await assertServing(gw);
    assertLogsClean(gw, [...KEYS, ...WRONG]);
  });

  it('IPv6 addresses rotated within one /64 (through a trusted proxy) share one allowance; another /64 has its own', async () => {
    // The loopback interface only owns ::1, so a test client cannot send from many IPv6 source
    // addresses; a trusted proxy reporting them in X-Forwarded-For exercises the same limiter key.
    const gw = await gateway({
      config: { rate_limit_requests: 3, trusted_proxies: ['127.0.0.1'] },
      keys: KEYS,
    });
    const statuses: number[] = [];
    for (let i = 1; i <= 6; i++) {
      const res = await models(gw, {
        authorization: `Bearer ${WRONG[i]}`,
        'x-forwarded-for': `2001:db8:1:2::${i.toString(16)}:${(i * 4099).toString(16)}`,
      });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429]);
    const other = await models(gw, {
      authorization: `Bearer ${WRONG[9]}`,
      'x-forwarded-for': '2001:db8:1:3::1',
    });
    assert.equal(other.status, 401, 'another /64 has its own allowance');
    await other.arrayBuffer();
    assert.ok(
      gw.logs.lines().some((l) => l.msg === 'request' && String(l.ip).startsWith('2001:db8:1:2::')),
      "the trusted proxy's client address is the one logged",
    );
    assertLogsClean(gw, [...KEYS, ...WRONG]);
  });

  it('the limiter key groups IPv6 by /64 in every spelling and counts IPv4-mapped addresses as IPv4', () => {
    const key = clientKey('2001:db8:1:2::1');
    for (const ip of [
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0db8:0001:0002:0:0:0:9',
      '2001:DB8:1:2::abcd',
      '2001:db8:1:2::1%eth0',
    ])
      assert.equal(clientKey(ip), key, ip);
    assert.notEqual(clientKey('2001:db8:1:3::1'), key);
    assert.equal(clientKey('::ffff:198.51.100.7'), '198.51.100.7');
    assert.equal(clientKey('::1'), clientKey('0:0:0:0:0:0:0:1'));
  });

  it('a real IPv6 loopback client is limited like any other', async () => {
    const gw = await gateway({ config: { rate_limit_requests: 2 }, listen: false });
    await gw.app.listen({ host: '::1', port: 0 });
    const port = (gw.app.server.address() as { port: number }).port;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await rawRequest(
        port,
        `GET /v1/models HTTP/1.1\r\nHost: [::1]\r\nAuthorization: Bearer ${GATEWAY_KEY}_wrong\r\nConnection: close\r\n\r\n`,
        { host: '::1' },
      );
      statuses.push(res.status);
      if (res.status === 429) assertRawRefusal(res, 429, 'rate_limit_exceeded');
    }
    assert.deepEqual(statuses, [401, 401, 429]);
    assert.ok(gw.logs.lines().some((l) => l.msg === 'request' && l.ip === '::1'));
  });

  it('key guessing: every wrong key is a logged 401 until the window is spent, then 429', async () => {
    const gw = await gateway({ config: { rate_limit_requests: 5 } });
    const guesses = Array.from({ length: 8 }, (_, i) => `guess-${i}-${Math.random().toString(36).slice(2)}`);
    const statuses: number[] = [];
    for (const guess of guesses) {
      const res = await models(gw, { authorization: `Bearer ${guess}` });
      statuses.push(res.status);
      assertEnvelope(await res.text(), res.status === 401 ? 'invalid_api_key' : 'rate_limit_exceeded');
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    const events = securityEvents(gw);
    assert.equal(events.filter((e) => e.event === 'auth_failed').length, 5);
    assert.equal(events.filter((e) => e.event === 'rate_limit_exceeded').length, 3);
    assert.ok(events.every((e) => e.ip === '127.0.0.1' && e.path === '/v1/models'));
    // The right key does not help from the same address once the window is spent.
    assert.equal((await models(gw)).status, 429);
    const metrics = await (
      await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${GATEWAY_KEY}` } })
    ).text();
    assert.match(metrics, /gateway_auth_failures_total\{reason="invalid"\} 5/);
    assertLogsClean(gw, guesses);
  });

  it('key guessing on /metrics spends the same window', async () => {
    const gw = await gateway({ config: { rate_limit_requests: 3 } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${gw.url}/metrics`, {
        headers: { authorization: `Bearer metrics-guess-${i}` },
      });
      statuses.push(res.status);
      assertEnvelope(await res.text());
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
  });

  describe('odd Authorization headers', () => {
    let gw: TestGateway;
    const cases: Array<[string, string | undefined]> = [
      ['Basic credentials', `Basic ${Buffer.from(`user:${GATEWAY_KEY}`).toString('base64')}`],
      ['"Bearer" with no key', 'Bearer'],
      ['"Bearer " and spaces only', 'Bearer    '],
      ['two tokens after Bearer', `Bearer ${GATEWAY_KEY} ${GATEWAY_KEY}`],
      ['another scheme with the right key', `Token ${GATEWAY_KEY}`],
      ['the key without a scheme', GATEWAY_KEY],
      ['the right key with a suffix', `Bearer ${GATEWAY_KEY}x`],
      ['a prefix of the right key', `Bearer ${GATEWAY_KEY.slice(0, -1)}`],
      ['a 10 KiB key', `Bearer ${'k'.repeat(10_240)}`],
      ['Digest credentials', 'Digest username="a", realm="b", response="c"'],
    ];
    it('starts', async () => {
      gw = await gateway({ config: { rate_limit_requests: 100_000 } });
    });
    for (const [name, value] of cases) {
      it(`${name} → 401`, async () => {
        const res = await models(gw, value === undefined ? {} : { authorization: value });
        assert.equal(res.status, 401);
        assertEnvelope(await res.text(), 'invalid_api_key');
      });
    }
    it('the key in the query string instead of the header → 401, and the query is not logged', async () => {
      const res = await fetch(`${gw.url}/v1/models?api_key=${GATEWAY_KEY}&key=${GATEWAY_KEY}`);
      assert.equal(res.status, 401);
      assertEnvelope(await res.text(), 'invalid_api_key');
    });
    it('two Authorization headers, a wrong one first → 401 (the first one counts)', async () => {
      const res = await rawRequest(
        Number(new URL(gw.url).port),
        `GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer wrong-key-first-000000\r\nAuthorization: Bearer ${GATEWAY_KEY}\r\nConnection: close\r\n\r\n`,
      );
      assertRawRefusal(res, 401, 'invalid_api_key');
    });
    it('a key with raw UTF-8 bytes → 401', async () => {
      const res = await rawRequest(
        Number(new URL(gw.url).port),
        Buffer.concat([
          Buffer.from('GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer '),
          Buffer.from('clé-ünïcødé-🔑', 'utf8'),
          Buffer.from('\r\nConnection: close\r\n\r\n'),
        ]),
      );
      assertRawRefusal(res, 401, 'invalid_api_key');
    });
    it('the scheme name is case-insensitive (RFC 9110 §11.1), the key is not', async () => {
      const lower = await models(gw, { authorization: `bearer ${GATEWAY_KEY}` });
      assert.equal(lower.status, 200);
      await lower.arrayBuffer();
      const upperKey = await models(gw, { authorization: `Bearer ${GATEWAY_KEY.toUpperCase()}` });
      assert.equal(upperKey.status, 401);
      await upperKey.arrayBuffer();
    });
    it('still serves, and no tried credential reached the logs', async () => {
      await assertServing(gw);
      assertLogsClean(gw, [
        Buffer.from(`user:${GATEWAY_KEY}`).toString('base64'),
        'k'.repeat(64),
        'wrong-key-first-000000',
        GATEWAY_KEY.toUpperCase(),
      ]);
    });
  });
});
