import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { percentile, RecentStats } from '../../src/gateway/metrics/recent-stats.js';
import { chatBody, startTestGateway, type TestGateway } from '../helpers/gateway.js';

function promValue(text: string, line: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(line))
    .reduce((acc, l) => acc + Number(l.split(' ').at(-1)), 0);
}

describe('percentile and RecentStats', () => {
  it('computes nearest-rank percentiles, null when empty', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile([7], 95), 7);
    assert.equal(percentile([], 50), null);
  });

  it('keeps a 10-second series and the latest security events, bounded', () => {
    const stats = new RecentStats({ maxEvents: 3 });
    stats.record(0, 10, undefined, 200);
    stats.record(5_000, 30, 4, 502);
    stats.record(25_000, 20, undefined, 200);
    const series = stats.series(25_000);
    assert.deepEqual(
      series.map((p) => [p.requests, p.errors]),
      [
        [2, 1],
        [0, 0],
        [1, 0],
      ],
    );
    assert.equal(series[0]?.ttft_p50_ms, 4);
    for (let i = 0; i < 5; i++)
      stats.securityEvent({
        at: '',
        event: `e${i}`,
        ip: '::1',
        path: '/',
        status: 400,
        code: undefined,
        userAgent: undefined,
      });
    assert.deepEqual(
      stats.events().map((e) => e.event),
      ['e4', 'e3', 'e2'],
    );
    assert.equal(stats.series(10 * 60 * 60 * 1000).length, 90, 'only the last 15 minutes');
  });
});

describe('/metrics?format=json', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ config: { rate_limit_requests: 1000, enable_profiling: true } });
    const cached = chatBody('json stats', { temperature: 0 });
    for (let i = 0; i < 3; i++)
      await (await gw.api('/v1/chat/completions', { method: 'POST', json: cached })).arrayBuffer();
    await (
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody('stream', { stream: true, stream_options: { include_usage: true } }),
      })
    ).text();
    await (await gw.api('/v1/chat/completions', { method: 'POST', json: { model: 'x' } })).arrayBuffer();
    gw.pod!.setFault({
      kind: 'status',
      status: 500,
      body: '{"object":"error","message":"boom","type":"InternalServerError","param":null,"code":500}',
    });
    await (await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('fail') })).arrayBuffer();
    gw.pod!.setFault({ kind: 'none' });
  });
  after(() => gw.close());

  it("returns the original Python tool's fields with the values the Prometheus counters hold", async () => {
    const json = (await (await gw.api('/metrics?format=json')).json()) as Record<string, unknown>;
    const prom = await (await gw.api('/metrics')).text();
    // requests_total is the API's traffic: the gateway's own /metrics and /health calls are not in it.
    assert.equal(json.requests_total, promValue(prom, 'gateway_requests_total{route="chat"'));
    assert.equal(json.requests_total, 6);
    assert.equal(json.cache_hits, 2);
    assert.equal(json.cache_hits, promValue(prom, 'gateway_cache_requests_total{result="hit"}'));
    assert.equal(json.cache_misses, 1);
    assert.equal(json.errors_total, 1);
    assert.equal(json.error_rate, Math.round((1 / 6) * 10_000) / 10_000);
    assert.equal(json.cache_entries, 1);
    assert.equal(json.cache_entries, promValue(prom, 'gateway_cache_entries'));
    assert.equal(json.cache_size_bytes, promValue(prom, 'gateway_cache_bytes'));
    assert.equal(json.cache_hit_rate, Math.round((2 / 3) * 10_000) / 10_000);
    assert.equal(json.tokens_out, promValue(prom, 'gateway_tokens_total{type="completion"}'));
    const sum = promValue(prom, 'gateway_request_duration_seconds_sum{route="chat"}');
    const count = promValue(prom, 'gateway_request_duration_seconds_count{route="chat"}');
    assert.equal(count, 6);
    assert.ok(Math.abs((json.avg_response_time as number) - (sum / count) * 1000) < 0.01);
    const latency = json.latency_ms as { p50: number; p95: number; p99: number };
    assert.ok(latency.p50 > 0 && latency.p50 <= latency.p95 && latency.p95 <= latency.p99);
    assert.ok((json.ttft_ms as { p50: number }).p50 > 0);
    assert.equal(typeof json.uptime_s, 'number');
    assert.equal((json.security_events as Array<{ event: string }>)[0]?.event, 'upstream_error');
  });

  it('answers JSON for Accept: application/json as well', async () => {
    const res = await gw.api('/metrics', { headers: { accept: 'application/json' } });
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const prometheus = await gw.api('/metrics', {
      headers: {
        accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
      },
    });
    assert.match(prometheus.headers.get('content-type') ?? '', /^text\/plain/);
  });

  it('reports unmeasured values as null, not 0', async () => {
    const fresh = await startTestGateway({ config: { cache_mode: 'off' } });
    try {
      const json = (await (await fresh.api('/metrics?format=json')).json()) as Record<string, unknown>;
      assert.equal(json.requests_total, 0);
      assert.equal(json.cache_hit_rate, null);
      assert.equal(json.avg_response_time, null);
      assert.equal(json.cache_entries, null);
      assert.deepEqual(json.latency_ms, { p50: null, p95: null, p99: null });
    } finally {
      await fresh.close();
    }
  });

  it('/debug/cache describes entries without their content, only with a key and profiling on', async () => {
    const res = await gw.api('/debug/cache');
    const text = await res.text();
    const body = JSON.parse(text) as {
      entries: number;
      items: Array<{ key_prefix: string; bytes: number; hits: number }>;
    };
    assert.equal(body.entries, 1);
    assert.equal(body.items[0]?.key_prefix.length, 12);
    assert.equal(body.items[0]?.hits, 2);
    assert.ok(!text.includes('json stats') && !text.includes('You said'), 'no cached content');
    assert.equal((await fetch(`${gw.url}/debug/cache`)).status, 401);
    const off = await startTestGateway();
    try {
      assert.equal((await off.api('/debug/cache')).status, 404);
    } finally {
      await off.close();
    }
  });
});
