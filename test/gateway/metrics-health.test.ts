import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import { GATEWAY_KEY, chatBody, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('/metrics', () => {
  let gw: TestGateway;
  before(async () => {
    // The per-client window counts only requests without a valid key: 1 here.
    gw = await startTestGateway({ config: { rate_limit_requests: 1 } });
    await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('a') });
    await (
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody('b', { stream: true, stream_options: { include_usage: true } }),
      })
    ).text();
    await gw.api('/v1/chat/completions', { method: 'POST', json: { model: 'x' } });
    await gw.api('/v1/models', { headers: { authorization: 'Bearer wrong-wrong-wrong-wrong' } });
    await gw.api('/v1/models'); // the 2nd keyless one from this IP: rate limited
  });
  after(() => gw.close());

  it("needs the gateway key by default, and does not spend the caller's allowance", async () => {
    const fresh = await startTestGateway({ config: { rate_limit_requests: 2 } });
    try {
      assert.equal((await fetch(`${fresh.url}/metrics`)).status, 401);
      for (let i = 0; i < 3; i++) assert.equal((await fresh.api('/metrics')).status, 200);
      assert.equal((await fetch(`${fresh.url}/metrics`)).status, 401);
      assert.equal((await fetch(`${fresh.url}/metrics`)).status, 429, 'key guessing is limited here too');
    } finally {
      await fresh.close();
    }
  });

  it('counts exactly what happened, in Prometheus text format', async () => {
    const res = await gw.api('/metrics');
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.equal(sample(text, 'gateway_requests_total', 'route="chat",status="200"'), 2);
    assert.equal(sample(text, 'gateway_requests_total', 'route="chat",status="400"'), 1);
    assert.equal(sample(text, 'gateway_requests_total', 'route="models",status="401"'), 1);
    assert.equal(sample(text, 'gateway_requests_total', 'route="models",status="429"'), 1);
    assert.equal(sample(text, 'gateway_auth_failures_total', 'reason="invalid"'), 1);
    assert.equal(sample(text, 'gateway_rate_limited_total', 'scope="ip"'), 1);
    assert.equal(sample(text, 'gateway_tokens_total', 'type="completion"'), 16);
    assert.equal(sample(text, 'gateway_overhead_seconds_count', 'route="chat"'), 2);
    assert.equal(sample(text, 'gateway_stream_ttfb_seconds_count', 'route="chat"'), 1);
    assert.match(text, /# TYPE gateway_overhead_seconds histogram/);
    // Unmeasured is absent, not zero: no upstream error ever happened, so no series exists.
    assert.equal(text.split('\n').filter((l) => l.startsWith('gateway_upstream_errors_total{')).length, 0);
  });
});

describe('/health', () => {
  it("reports uptime, upstream reachability from the background probe, and the caller's allowance", async () => {
    const gw = await startTestGateway({ probe: true });
    try {
      await gw.probe.runOnce();
      const res = await fetch(`${gw.url}/health`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as {
        status: string;
        uptime_s: number;
        upstreams: Array<{ reachable: boolean; latency_ms: number }>;
        rate_limit: { limit: number; remaining: number };
      };
      assert.equal(body.status, 'ok');
      assert.equal(body.upstreams[0]?.reachable, true);
      assert.equal(typeof body.upstreams[0]?.latency_ms, 'number');
      assert.deepEqual([body.rate_limit.limit, body.rate_limit.remaining], [60, 60]);
      const probes = gw.pod!.requests.filter((r) => r.path === '/v1/models');
      assert.equal(probes[0]?.headers.authorization, `Bearer ${POD_KEY}`);
    } finally {
      await gw.close();
    }
  });

  it('says degraded (still 200) when the upstream is down, and why', async () => {
    const gw = await startTestGateway({
      pod: false,
      routes: staticRouteSource('http://127.0.0.1:1/v1', POD_KEY),
      probe: true,
    });
    try {
      await gw.probe.runOnce();
      const body = (await (await fetch(`${gw.url}/health`)).json()) as {
        status: string;
        upstreams: Array<{ reachable: boolean; error: string }>;
      };
      assert.equal(body.status, 'degraded');
      assert.equal(body.upstreams[0]?.reachable, false);
      assert.equal(body.upstreams[0]?.error, 'ECONNREFUSED');
      void GATEWAY_KEY;
    } finally {
      await gw.close();
    }
  });
});
