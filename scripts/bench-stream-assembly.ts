/**
 * What a non-streamed request costs when it travels streamed, measured two ways:
 *
 * 1. the assembly alone: `assembleStream` on vLLM-shaped streams (chat and completions, 16, 256
 *    and 2,000 tokens), wall and CPU µs per answer;
 * 2. end to end on loopback: the gateway in front of a vLLM stand-in (a 16-token answer), the same
 *    non-streamed chat sent N times through a plain route and through a travelling route,
 *    interleaved in rounds; wall ms and the process's CPU µs per request (gateway + stand-in +
 *    client, all in this process).
 *
 *   node --import tsx scripts/bench-stream-assembly.ts [requests=400]
 */
import type { AddressInfo } from 'node:net';
import { defaultConfig } from '../src/config/schema.js';
import { startVllmStandin } from '../src/emulator/vllm-standin.js';
import { buildApp } from '../src/gateway/app.js';
import { assembleStream } from '../src/gateway/upstream/stream-assembly.js';
import { staticRouteSource } from '../src/gateway/upstream/route-source.js';
import { silentLogger } from '../src/shared/logger.js';

const requests = Number(process.argv[2] ?? 400);
const KEY = 'bench_key_0123456789abcdef0123';
const pod = await startVllmStandin({ model: 'm', chunks: 16 });

/** A vLLM-shaped stream of `n` tokens (the stand-in's answers are short). */
function syntheticSse(api: 'chat' | 'completions', n: number): Buffer {
  const base = {
    id: 'x-0123456789abcdef',
    object: api === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: 1_800_000_000,
    model: 'm',
  };
  const choice = (i: number, last: boolean): object =>
    api === 'chat'
      ? {
          index: 0,
          delta: i < 0 ? { role: 'assistant', content: '' } : last ? {} : { content: ' word' },
          logprobs: null,
          finish_reason: last ? 'stop' : null,
          ...(last ? { stop_reason: null } : {}),
        }
      : { index: 0, text: ' word', logprobs: null, finish_reason: last ? 'stop' : null, stop_reason: null };
  const events = [
    ...(api === 'chat' ? [choice(-1, false)] : []),
    ...Array.from({ length: n }, (_, i) => choice(i, api === 'completions' && i === n - 1)),
  ];
  if (api === 'chat') events.push(choice(n, true));
  let text = events.map((c) => `data: ${JSON.stringify({ ...base, choices: [c] })}\n\n`).join('');
  text += `data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: n, total_tokens: n + 5 } })}\n\ndata: [DONE]\n\n`;
  return Buffer.from(text);
}

async function micro(api: 'chat' | 'completions', n: number): Promise<void> {
  const bytes = syntheticSse(api, n);
  for (let i = 0; i < 200; i++) await assembleStream(api, bytes);
  const runs = 1_000;
  const cpu = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < runs; i++) await assembleStream(api, bytes);
  const wall = (performance.now() - t) / runs;
  const used = process.cpuUsage(cpu);
  console.log(
    `assembly ${api}, ${n} tokens (${bytes.length} SSE bytes): ${(wall * 1000).toFixed(0)} µs wall, ${((used.user + used.system) / runs).toFixed(0)} µs CPU per answer`,
  );
}
for (const n of [16, 256, 2000]) {
  await micro('chat', n);
  await micro('completions', n);
}

async function gateway(
  travel: boolean,
): Promise<{ url: string; close: () => Promise<void>; overheadMs: () => Promise<number> }> {
  const built = await buildApp({
    config: defaultConfig({ proxy_port: 0, cache_mode: 'off', rate_limit_requests: 1_000_000 }),
    logger: silentLogger(),
    routes: staticRouteSource(`${pod.url}/v1`, undefined, 'm', travel),
    keys: [KEY],
    probe: false,
  });
  await built.app.listen({ host: '127.0.0.1', port: 0 });
  // The gateway's own time (total minus upstream; for a travelling request the assembly is in it).
  const overheadMs = async (): Promise<number> => {
    const values = (await built.metrics.overhead.get()).values;
    const sum = values.find((v) => v.metricName === 'gateway_overhead_seconds_sum')?.value ?? 0;
    const count = values.find((v) => v.metricName === 'gateway_overhead_seconds_count')?.value ?? 1;
    return (sum / count) * 1000;
  };
  return {
    url: `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}/v1/chat/completions`,
    close: () => built.app.close(),
    overheadMs,
  };
}
const plain = await gateway(false);
const travelling = await gateway(true);
const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'bench' }] });
const totals = { plain: { wall: 0, cpu: 0, n: 0 }, travelling: { wall: 0, cpu: 0, n: 0 } };

async function round(which: 'plain' | 'travelling', n: number, record: boolean): Promise<void> {
  const url = which === 'plain' ? plain.url : travelling.url;
  const cpu = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body,
    });
    if (res.status !== 200) throw new Error(`${which}: HTTP ${res.status}`);
    await res.arrayBuffer();
  }
  if (!record) return;
  const used = process.cpuUsage(cpu);
  totals[which].wall += performance.now() - t;
  totals[which].cpu += used.user + used.system;
  totals[which].n += n;
}
await round('plain', 50, false);
await round('travelling', 50, false);
const per = Math.max(1, Math.floor(requests / 10));
for (let r = 0; r < 10; r++) {
  await round('plain', per, true);
  await round('travelling', per, true);
}
for (const which of ['plain', 'travelling'] as const) {
  const t = totals[which];
  const overhead = await (which === 'plain' ? plain : travelling).overheadMs();
  console.log(
    `end to end ${which}: ${t.n} requests, ${(t.wall / t.n).toFixed(3)} ms wall, ${(t.cpu / t.n).toFixed(0)} µs CPU per request (gateway + stand-in + client); gateway overhead ${overhead.toFixed(3)} ms`,
  );
}
await plain.close();
await travelling.close();
await pod.close();
