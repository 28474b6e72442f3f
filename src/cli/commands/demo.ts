import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { defaultConfig } from '../../config/schema.js';
import { startVllmStandin } from '../../emulator/vllm-standin.js';
import { staticRouteSource } from '../../gateway/upstream/route-source.js';
import { startGateway } from '../../gateway/server.js';
import { silentLogger } from '../../shared/logger.js';
import { type CliIo, line } from '../io.js';

/**
 * `runpod-llm demo`: the gateway end to end with no account and no money — a vLLM stand-in as
 * the pod, the real gateway in front of it, and the official `openai` SDK streaming a chat
 * through it. Everything runs on loopback and is removed afterwards.
 */
export async function runDemoCommand(io: CliIo): Promise<number> {
  const out = (text = ''): void => line(io.stdout, text);
  const home = mkdtempSync(join(tmpdir(), 'runpod-llm-demo-'));
  const podKey = `pod_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const gatewayKey = `rlm_demo_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const model = 'Qwen/Qwen2.5-Coder-7B-Instruct';
  const pod = await startVllmStandin({ model, apiKey: podKey, chunkDelayMs: 40, chunks: 12 });
  out(`1. pod: a vLLM stand-in serving ${model} at ${pod.url} (its /v1 needs the pod's own key)`);
  const config = defaultConfig({ proxy_port: 0, home, upstream: { url: `${pod.url}/v1` } });
  const gateway = await startGateway({ config, logger: silentLogger(), routes: staticRouteSource(`${pod.url}/v1`, podKey, model), keys: [gatewayKey] });
  try {
    out(`2. gateway: ${gateway.baseUrl} (auth on, rate limit ${config.rate_limit_requests}/${config.rate_limit_window}s, security headers, metrics)`);
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: gatewayKey, maxRetries: 0 });
    const models = await client.models.list();
    out(`3. openai SDK → GET /v1/models: ${models.data.map((m) => m.id).join(', ')}`);
    io.stdout.write('4. openai SDK → streamed chat "Write a haiku about idle GPUs": ');
    const started = performance.now();
    let firstTokenMs: number | undefined;
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    const stream = await client.chat.completions.create({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Write a haiku about idle GPUs' }],
    });
    for await (const chunk of stream) {
      const text = chunk.choices[0]?.delta?.content ?? '';
      if (text !== '' && firstTokenMs === undefined) firstTokenMs = performance.now() - started;
      io.stdout.write(text);
      if (chunk.usage) usage = chunk.usage;
    }
    out();
    out(`   first token after ${Math.round(firstTokenMs ?? 0)} ms, done after ${Math.round(performance.now() - started)} ms; usage: ${usage?.prompt_tokens ?? '?'} prompt + ${usage?.completion_tokens ?? '?'} completion tokens`);
    const denied = await fetch(`${gateway.baseUrl}/models`, { headers: { authorization: 'Bearer wrong-key-0000000000' } });
    out(`5. a wrong gateway key → HTTP ${denied.status} ${JSON.stringify(((await denied.json()) as { error: { code: string } }).error.code)}`);
    const health = (await (await fetch(gateway.baseUrl.replace(/\/v1$/, '/health'))).json()) as { status: string; rate_limit: { remaining: number } };
    out(`6. GET /health → status ${health.status}, rate-limit remaining ${health.rate_limit.remaining}`);
    const metrics = await (await fetch(gateway.baseUrl.replace(/\/v1$/, '/metrics'), { headers: { authorization: `Bearer ${gatewayKey}` } })).text();
    const picked = metrics.split('\n').filter((l) => /^gateway_(requests_total|tokens_total|auth_failures_total)\{/.test(l));
    out('7. GET /metrics (Prometheus), a few lines:');
    for (const l of picked) out(`   ${l}`);
    out();
    out('Next: `runpod-llm gateway` with UPSTREAM_URL set serves your IDE at http://127.0.0.1:8000/v1.');
    return 0;
  } finally {
    await gateway.close(1_000);
    await pod.close();
    rmSync(home, { recursive: true, force: true });
  }
}
