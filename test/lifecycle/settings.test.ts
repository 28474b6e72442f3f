import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { decodeGuardEnv, guardVersion, readGuardSource } from '../../src/guard/recipe.js';
import { buildCreateRequest } from '../../src/lifecycle/create-request.js';
import { podUrl, settingsFromConfig, settingsOfRun } from '../../src/lifecycle/run-settings.js';
import { formatDuration, parseDuration } from '../../src/shared/duration.js';

describe('manager settings (config → run settings → pod recipe)', () => {
  it('parses durations with units only, and "off" as no limit', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('90'), undefined, 'a bare number is ambiguous');
    assert.equal(parseDuration('1x'), undefined);
    assert.equal(formatDuration(3_900_000), '1h05m');
    assert.equal(formatDuration(90_000), '1m30s');
    const { config, errors } = loadConfig({
      env: {
        RUNPOD_LLM_RUNTIME_LIMIT: 'off',
        RUNPOD_LLM_IDLE_LIMIT: '20m',
        RUNPOD_LLM_BUDGET_USD: '2.50',
        HOME: '/tmp/x',
      },
    });
    assert.deepEqual(errors, []);
    const s = settingsFromConfig(config!.manager);
    assert.equal(s.runtimeLimitMs, null);
    assert.equal(s.idleLimitMs, 20 * 60_000);
    assert.equal(s.budgetUsd, 2.5);
    assert.equal(s.readinessTimeoutMs, 20 * 60_000, 'default readiness timeout: 20 minutes');
  });

  it('refuses an unpinned vLLM image and a model name that could inject arguments', () => {
    const latest = loadConfig({ env: { RUNPOD_LLM_VLLM_IMAGE: 'vllm/vllm-openai:latest' } });
    assert.match(latest.errors[0]?.message ?? '', /pin a version tag/);
    const untagged = loadConfig({ env: { RUNPOD_LLM_VLLM_IMAGE: 'vllm/vllm-openai' } });
    assert.match(untagged.errors[0]?.message ?? '', /pinned tag/);
    const injected = loadConfig({ env: { RUNPOD_LLM_MODEL: 'qwen --api-key x' } });
    assert.equal(injected.errors[0]?.path, 'manager.model');
  });

  it('reads RUNPOD_API_URL and RUNPOD_POD_URL_TEMPLATE, and builds pod URLs from the template', () => {
    const { config } = loadConfig({
      env: {
        RUNPOD_API_URL: 'http://127.0.0.1:9999',
        RUNPOD_POD_URL_TEMPLATE: 'http://127.0.0.1:1/proxy/{podId}-{port}',
      },
    });
    assert.equal(config?.manager.runpod_api_url, 'http://127.0.0.1:9999');
    assert.equal(podUrl(config.manager.pod_url_template, 'abc'), 'http://127.0.0.1:1/proxy/abc-8000');
    assert.equal(
      podUrl('https://{podId}-{port}.proxy.runpod.net', 'abc'),
      'https://abc-8000.proxy.runpod.net',
    );
  });

  it('builds the guarded create request by default: JSON start command, guard and key in the env only', () => {
    const { config } = loadConfig({ env: {} });
    const s = settingsFromConfig(config!.manager);
    assert.equal(s.guarded, true);
    const { request: req, guard } = buildCreateRequest(s, {
      name: 'runpod-llm-abc',
      gpuId: 'NVIDIA L40S',
      apiKey: 'vk_0123456789abcdef',
      hfToken: 'hf_x',
    });
    assert.equal(guard, guardVersion(readGuardSource()));
    assert.deepEqual(req.mounts, { persistent: { size: 60, path: '/workspace' } });
    assert.deepEqual(Object.keys(req.env ?? {}).sort(), [
      'GUARD_LEASE_SECONDS',
      'GUARD_RUNPOD_API_URL',
      'HF_HOME',
      'HF_TOKEN',
      'RUNPOD_LLM_GUARD',
      'VLLM_API_KEY',
    ]);
    // The guard's self-stop: the default 15-minute lease, RunPod's API as the pod reaches it; no stop time without a deadline.
    assert.equal(req.env?.GUARD_LEASE_SECONDS, '900');
    assert.equal(req.env?.GUARD_RUNPOD_API_URL, 'https://api.runpod.io');
    const timed = buildCreateRequest(s, {
      name: 'runpod-llm-abc',
      gpuId: 'NVIDIA L40S',
      apiKey: 'vk_0123456789abcdef',
      deadline: Date.UTC(2026, 10, 25, 12, 0, 0),
    }).request;
    assert.equal(timed.env?.GUARD_STOP_AT, String(Date.UTC(2026, 10, 25, 12, 0, 0) / 1000 + 120));
    const leaseOff = settingsFromConfig(loadConfig({ env: { RUNPOD_LLM_POD_LEASE: 'off' } }).config!.manager);
    assert.equal(
      buildCreateRequest(leaseOff, {
        name: 'runpod-llm-abc',
        gpuId: 'NVIDIA L40S',
        apiKey: 'vk_0123456789abcdef',
      }).request.env?.GUARD_LEASE_SECONDS,
      undefined,
    );
    assert.match(
      loadConfig({ env: { RUNPOD_LLM_POD_LEASE: '45s' } })
        .errors.map((e) => `${e.path}: ${e.message}`)
        .join('\n'),
      /manager\.pod_lease: must be at least twice watch_interval \(30 s\)/,
    );
    assert.equal(req.env?.HF_HOME, '/workspace/hf');
    assert.equal(req.env?.VLLM_API_KEY, 'vk_0123456789abcdef');
    assert.equal(decodeGuardEnv(req.env?.RUNPOD_LLM_GUARD ?? ''), readGuardSource());
    const start = JSON.parse(req.args ?? '') as { entrypoint: string[]; cmd: string[] };
    assert.deepEqual(start.entrypoint, ['bash', '-c']);
    assert.match(
      start.cmd[0] ?? '',
      /vllm serve Qwen\/Qwen2\.5-Coder-7B-Instruct --host 127\.0\.0\.1 --port 8001 /,
    );
    assert.ok(
      !(req.args ?? '').includes('vk_0123456789abcdef') && !(req.args ?? '').includes('hf_x'),
      'no secret on the command line',
    );
    assert.deepEqual(req.ports, ['8000/http']);
    assert.deepEqual(req.gpu, { id: 'NVIDIA L40S', count: 1 });
    assert.equal(req.cloud, 'SECURE');
  });

  it('builds plain vLLM arguments when unguarded (manager.guard false / RUNPOD_LLM_POD_GUARD=false), the key still only in the env', () => {
    const { config, errors } = loadConfig({
      env: { RUNPOD_LLM_POD_GUARD: 'false', RUNPOD_LLM_REPLICAS: '3' },
    });
    assert.deepEqual(errors, []);
    const s = settingsFromConfig(config!.manager);
    assert.equal(s.guarded, false);
    assert.equal(s.replicas, 3);
    const { request: req, guard } = buildCreateRequest(s, {
      name: 'runpod-llm-abc',
      gpuId: 'NVIDIA L40S',
      apiKey: 'vk_0123456789abcdef',
    });
    assert.equal(guard, null);
    assert.equal(
      req.args,
      'Qwen/Qwen2.5-Coder-7B-Instruct --host 0.0.0.0 --port 8000 --served-model-name Qwen/Qwen2.5-Coder-7B-Instruct --max-model-len 16384 --gpu-memory-utilization 0.90',
    );
    assert.deepEqual(req.env, { HF_HOME: '/workspace/hf', VLLM_API_KEY: 'vk_0123456789abcdef' });
    assert.equal(loadConfig({ env: { RUNPOD_LLM_REPLICAS: '0' } }).errors[0]?.path, 'manager.replicas');
  });

  it('keeps the settings a run started with, filling gaps from today’s configuration', () => {
    const { config } = loadConfig({ env: {} });
    const today = settingsFromConfig(config!.manager);
    const stored = settingsOfRun({ model: 'org/other-model', idleLimitMs: null }, today);
    assert.equal(stored.model, 'org/other-model');
    assert.equal(stored.idleLimitMs, null);
    assert.equal(stored.image, today.image);
    assert.deepEqual(settingsOfRun({ model: 42 }, today), today, 'a damaged record falls back whole');
  });
});
