import { Client, Pool } from 'undici';
import type { Target } from './systems.js';

/**
 * Our load generators, on undici: what wrk cannot do here is constant-rate (open-loop) load
 * without coordinated omission (wrk2 is not packaged) and per-event SSE timing. Latency is always
 * measured from when a request was *due*, so a proxy that falls behind is charged for the queue
 * it builds, not only for the requests it manages to answer.
 */

/** A small chat request; the model name tells the upstream stand-in how to behave. */
export function chatBody(model: string, opts: { stream?: boolean; temperature?: number } = {}): string {
  return JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a concise coding assistant.' },
      { role: 'user', content: 'Complete: function add(a, b) {' },
    ],
    max_tokens: 64,
    ...(opts.temperature === undefined ? {} : { temperature: opts.temperature }),
    ...(opts.stream === true ? { stream: true } : {}),
  });
}

export interface LatencyRun {
  /** Round-trip times in ms, warm-up excluded. */
  latencies: Float64Array;
  errors: number;
  /** Answers with `X-Cache: HIT` (workloads other than the cache one must see none). */
  cacheHits: number;
}

/**
 * Requests one after another on one keep-alive connection (concurrency 1), each timed from
 * sending it to the end of its answer, or (`until: 'first-byte'`, for streams) to its first body
 * bytes: the first SSE event, the time to first token a user waits for at an idle moment; the
 * rest of the stream is still read before the next request.
 */
export async function sequentialLatency(
  target: Target,
  body: string,
  n: number,
  warmup: number,
  until: 'end' | 'first-byte' = 'end',
): Promise<LatencyRun> {
  const client = new Client(target.origin, { pipelining: 1, keepAliveTimeout: 30_000 });
  const latencies = new Float64Array(n);
  let errors = 0;
  let cacheHits = 0;
  try {
    for (let i = -warmup; i < n; i++) {
      const t0 = performance.now();
      let first = Number.NaN;
      try {
        const res = await client.request({
          path: target.path,
          method: 'POST',
          headers: target.headers,
          body,
        });
        if (until === 'end') await res.body.dump({ limit: 1 << 20 });
        else
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            if (Number.isNaN(first) && chunk.length > 0) first = performance.now() - t0;
          }
        if (res.statusCode !== 200 || (until === 'first-byte' && Number.isNaN(first))) errors++;
        if (res.headers['x-cache'] === 'HIT') cacheHits++;
      } catch {
        errors++;
      }
      if (i >= 0) latencies[i] = until === 'end' ? performance.now() - t0 : first;
    }
  } finally {
    await client.destroy();
  }
  return { latencies: latencies.filter((v) => !Number.isNaN(v)), errors, cacheHits };
}

export interface OpenLoopResult {
  rate: number;
  /** Requests due in the measured part (after warm-up). */
  sent: number;
  ok: number;
  /** Non-200 answers, failures, and requests still unanswered `timeoutMs` after the last was due. */
  errors: number;
  /** Per request in due order (measured part): ms from due time to full response, NaN if it failed. */
  byDue: Float64Array;
  /** Rate actually offered (the generator itself can fall behind on a busy box). */
  achievedRate: number;
}

/**
 * Constant-rate load: request i is due at start + i/rate whatever happened to earlier ones.
 * Requests still unanswered `timeoutMs` after the last one was due count as errors.
 */
export async function openLoop(
  target: Target,
  opts: {
    rate: number;
    durationMs: number;
    warmupMs: number;
    timeoutMs: number;
    body: string;
    connections?: number;
  },
): Promise<OpenLoopResult> {
  const pool = new Pool(target.origin, {
    connections: opts.connections ?? 1024,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const interval = 1000 / opts.rate;
  const total = Math.round((opts.rate * (opts.durationMs + opts.warmupMs)) / 1000);
  const firstMeasured = Math.round((opts.rate * opts.warmupMs) / 1000);
  // 0 = still unanswered; NaN = failed; > 0 = latency.
  const byDue = new Float64Array(Math.max(0, total - firstMeasured));
  let ok = 0;
  let errors = 0;
  let pending = 0;
  let fired = 0;
  const start = performance.now() + 20;
  let lastFireAt = start;
  let resolveDrained: () => void = () => undefined;
  const drained = new Promise<void>((r) => {
    resolveDrained = r;
  });
  const settle = (i: number, latency: number) => {
    pending--;
    if (i >= firstMeasured) {
      byDue[i - firstMeasured] = latency;
      if (Number.isNaN(latency)) errors++;
      else ok++;
    }
    if (fired === total && pending === 0) resolveDrained();
  };

  const fire = (i: number, due: number) => {
    pending++;
    pool
      .request({
        path: target.path,
        method: 'POST',
        headers: target.headers,
        body: opts.body,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      })
      .then(async (res) => {
        await res.body.dump({ limit: 1 << 20 });
        settle(i, res.statusCode === 200 ? Math.max(1e-6, performance.now() - due) : Number.NaN);
      })
      .catch(() => settle(i, Number.NaN));
  };

  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = performance.now();
      while (fired < total && start + fired * interval <= now) {
        fire(fired, start + fired * interval);
        fired++;
      }
      lastFireAt = now;
      if (fired < total)
        setTimeout(pump, Math.max(0, Math.min(1, start + fired * interval - performance.now())));
      else resolve();
    };
    setTimeout(pump, Math.max(0, start - performance.now()));
  });
  if (pending === 0) resolveDrained();
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), opts.timeoutMs + 500).unref());
  await Promise.race([drained, timeout]);
  await pool.destroy().catch(() => undefined);
  let unanswered = 0;
  for (let i = 0; i < byDue.length; i++) {
    if (byDue[i] === 0) {
      byDue[i] = Number.NaN;
      unanswered++;
    }
  }
  const elapsed = lastFireAt - start;
  return {
    rate: opts.rate,
    sent: byDue.length,
    ok,
    errors: errors + unanswered,
    byDue,
    achievedRate: elapsed > 0 ? (total / elapsed) * 1000 : Number.NaN,
  };
}

const TERMINATOR = Buffer.from('\n\n');

/**
 * SSE events completed by one read: "\n\n" terminators, also one split across two reads
 * (`carry`: the previous read ended in a lone "\n"). Native searches, because a JS byte loop
 * would cost the generator more than the proxies under test spend at 50k events/s.
 */
export function countEvents(chunk: Buffer, carry: boolean): { events: number; endsInNewline: boolean } {
  let events = carry && chunk[0] === 0x0a ? 1 : 0;
  for (let at = chunk.indexOf(TERMINATOR, events); at >= 0; at = chunk.indexOf(TERMINATOR, at + 2)) events++;
  const len = chunk.length;
  // A trailing "\n" can start a terminator only if it did not just end one.
  const lastEndsTerminator = len >= 2 ? chunk[len - 2] === 0x0a : carry && events > 0;
  return { events, endsInNewline: len > 0 && chunk[len - 1] === 0x0a && !lastEndsTerminator };
}

export interface StreamResult {
  ok: boolean;
  error?: string;
  /** Request sent → first event received, ms. */
  ttftMs: number;
  /** Gaps between the arrival of consecutive timed events (the deltas), ms. */
  gaps: number[];
  /** Events received (the deltas, the usage event and [DONE]). */
  events: number;
}

/**
 * One SSE request: timestamps each event as the read that completes it arrives. `expected` deltas
 * are timed; the usage event and [DONE] that follow are only counted.
 */
export async function runStream(
  pool: Pool,
  target: Target,
  body: string,
  expected: number,
): Promise<StreamResult> {
  const sentAt = performance.now();
  const times: number[] = [];
  let events = 0;
  let lastWasNewline = false;
  try {
    const res = await pool.request({
      path: target.path,
      method: 'POST',
      headers: target.headers,
      body,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    if (res.statusCode !== 200) {
      await res.body.dump({ limit: 1 << 20 });
      return { ok: false, error: `status ${res.statusCode}`, ttftMs: Number.NaN, gaps: [], events: 0 };
    }
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      const now = performance.now();
      const counted = countEvents(chunk, lastWasNewline);
      lastWasNewline = counted.endsInNewline;
      const n = counted.events;
      for (let k = 0; k < n; k++) {
        events++;
        if (times.length < expected) times.push(now);
      }
    }
  } catch (err) {
    return {
      ok: false,
      error: (err as { code?: string }).code ?? (err as Error).message,
      ttftMs: times.length > 0 ? (times[0] as number) - sentAt : Number.NaN,
      gaps: gapsOf(times),
      events,
    };
  }
  const ok = times.length === expected && events >= expected + 1;
  return {
    ok,
    ...(ok ? {} : { error: `received ${events} events, expected ${expected} deltas + final` }),
    ttftMs: times.length > 0 ? (times[0] as number) - sentAt : Number.NaN,
    gaps: gapsOf(times),
    events,
  };
}

function gapsOf(times: number[]): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < times.length; i++) gaps.push((times[i] as number) - (times[i - 1] as number));
  return gaps;
}

/**
 * `count` streams in total, at most `concurrency` at a time; with concurrency ≥ count all are
 * opened within `rampMs` (spread evenly, so connection setup does not land in one burst).
 */
export async function streamBatch(
  target: Target,
  opts: { count: number; concurrency: number; rampMs: number; body: string; expected: number },
): Promise<StreamResult[]> {
  const pool = new Pool(target.origin, {
    connections: Math.min(opts.count, opts.concurrency) + 8,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const results: StreamResult[] = [];
  let next = 0;
  const lanes = Math.min(opts.count, opts.concurrency);
  try {
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        if (opts.rampMs > 0) await new Promise((r) => setTimeout(r, (lane * opts.rampMs) / lanes));
        while (next < opts.count) {
          next++;
          results.push(await runStream(pool, target, opts.body, opts.expected));
        }
      }),
    );
  } finally {
    await pool.destroy().catch(() => undefined);
  }
  return results;
}
