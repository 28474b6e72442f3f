import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CpuProfile, locate, summarizeProfile } from '../../bench/lib/cpuprofile.js';
import { countEvents } from '../../bench/lib/load.js';
import {
  addedPerRound,
  errorRate,
  fmtMs,
  fmtSpread,
  growth,
  median,
  percentile,
  ratio,
  spread,
  summarize,
} from '../../bench/lib/stats.js';
import { parseWrk } from '../../bench/lib/wrk.js';
import { behaviourFor } from '../../bench/upstream.js';
import { judgeStep } from '../../bench/workloads/throughput.js';

describe('bench statistics', () => {
  it('takes nearest-rank percentiles without interpolating', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile(values, 100), 100);
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.throws(() => percentile([1], 101), RangeError);
  });

  it('summarises one run', () => {
    const s = summarize([3, 1, 2, 4]);
    assert.deepEqual([s.n, s.min, s.p50, s.max, s.mean], [4, 1, 2, 4, 2.5]);
  });

  it('reports the median and spread of several runs, ignoring missing ones', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.deepEqual(spread([5, Number.NaN, 1, 3]), { median: 3, min: 1, max: 5, runs: 3 });
    assert.ok(Number.isNaN(spread([]).median));
  });

  it('subtracts direct from proxy round by round', () => {
    // Round 2 was noisy for everyone: per-round differences cancel it.
    const added = addedPerRound([0.5, 5.5, 0.75], [0.25, 5.0, 0.25]);
    assert.deepEqual(added, { median: 0.5, min: 0.25, max: 0.5, runs: 3 });
  });

  it('leaves a ratio against a missing or zero baseline absent, never 0 or Infinity', () => {
    assert.equal(ratio(6, 3), 2);
    assert.ok(Number.isNaN(ratio(1, 0)));
    assert.ok(Number.isNaN(ratio(Number.NaN, 2)));
    assert.equal(errorRate(1, 1000), 0.001);
    assert.equal(errorRate(0, 0), 0);
    assert.equal(growth(100, 110), 0.1);
  });

  it('formats milliseconds, microseconds and spreads', () => {
    assert.equal(fmtMs(0.1234), '123 µs');
    assert.equal(fmtMs(12.345), '12.35 ms');
    assert.equal(fmtMs(Number.NaN), '—');
    assert.equal(fmtSpread({ median: 0.2, min: 0.1, max: 0.3, runs: 3 }, fmtMs), '200 µs (100 µs – 300 µs)');
    assert.equal(fmtSpread({ median: 0.2, min: 0.2, max: 0.2, runs: 1 }, fmtMs), '200 µs');
  });
});

describe('bench load helpers', () => {
  it('counts SSE events per read, also a terminator split across two reads', () => {
    assert.deepEqual(countEvents(Buffer.from('data: a\n\ndata: b\n\n'), false), {
      events: 2,
      endsInNewline: false,
    });
    const first = countEvents(Buffer.from('data: a\n'), false);
    assert.deepEqual(first, { events: 0, endsInNewline: true });
    assert.deepEqual(countEvents(Buffer.from('\ndata: b\n\n'), first.endsInNewline), {
      events: 2,
      endsInNewline: false,
    });
    assert.deepEqual(countEvents(Buffer.from('\n'), true), { events: 1, endsInNewline: false });
  });

  it('judges a constant-rate step on p99, errors, a growing queue and the generator keeping up', () => {
    const flat = new Float64Array(400).fill(25);
    assert.equal(
      judgeStep({ rate: 100, sent: 400, ok: 400, errors: 0, byDue: flat, achievedRate: 100 }).pass,
      true,
    );
    const growing = Float64Array.from({ length: 400 }, (_, i) => 25 + i);
    assert.match(
      judgeStep({ rate: 100, sent: 400, ok: 400, errors: 0, byDue: growing, achievedRate: 100 }).reason ?? '',
      /queue growing/,
    );
    const failing = Float64Array.from(flat, (v, i) => (i < 2 ? Number.NaN : v));
    assert.match(
      judgeStep({ rate: 100, sent: 400, ok: 398, errors: 2, byDue: failing, achievedRate: 100 }).reason ?? '',
      /errors/,
    );
    assert.match(
      judgeStep({ rate: 100, sent: 400, ok: 400, errors: 0, byDue: flat, achievedRate: 80 }).reason ?? '',
      /generator/,
    );
  });

  it('reads wrk reports', () => {
    const text = `Running 3s test @ http://127.0.0.1:1/
  Latency Distribution
     50%  812.00us
     99%    2.51ms
  12000 requests in 3.00s, 1.2MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:   4000.50
`;
    assert.deepEqual(parseWrk(text), { rps: 4000.5, p50: 0.812, p99: 2.51, requests: 12000, errors: 6 });
  });

  it('lets the model name choose the upstream stand-in behaviour', () => {
    const defaults = { delayMs: 0, chunks: 64, paceMs: 20 };
    assert.deepEqual(behaviourFor('bench-d20', defaults), { delayMs: 20, chunks: 64, paceMs: 20 });
    assert.deepEqual(behaviourFor('bench-d0-n8-p5', defaults), { delayMs: 0, chunks: 8, paceMs: 5 });
    assert.deepEqual(behaviourFor('gpt-4o', defaults), defaults);
  });
});

describe('bench CPU profile summary', () => {
  it('attributes self time to functions and packages, and our functions inclusively', () => {
    const frame = (functionName: string, url: string) => ({
      functionName,
      url,
      lineNumber: 0,
      columnNumber: 0,
    });
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
        { id: 2, callFrame: frame('handler', 'file:///repo/bench/out/dist/gateway/hooks.js'), children: [3] },
        { id: 3, callFrame: frame('LOG', 'file:///repo/node_modules/pino/lib/tools.js') },
        { id: 4, callFrame: frame('(idle)', '') },
      ],
      samples: [2, 3, 3, 4],
      timeDeltas: [0, 1000, 1000, 1000],
      startTime: 0,
      endTime: 4000,
    };
    const s = summarizeProfile(profile, '/repo/');
    assert.equal(s.busyMs, 3);
    assert.deepEqual(
      s.categories.map((c) => [c.category, c.ms]),
      [
        ['pino', 2],
        ['our code', 1],
      ],
    );
    assert.equal(s.oursInclusive[0]?.name, 'handler');
    assert.equal(s.oursInclusive[0]?.ms, 3);
    assert.deepEqual(locate('node:internal/http', '/repo/'), {
      where: 'node:internal/http',
      category: 'node internals',
    });
    assert.equal(
      locate('file:///repo/node_modules/@pinojs/redact/index.js', '/repo/').category,
      '@pinojs/redact',
    );
  });
});
