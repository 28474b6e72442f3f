import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import { guardedPodStart, unguardedPodStart } from '../../src/guard/recipe.js';
import { createRunPodClient } from '../../src/runpod/client.js';
import { ManualClock } from '../../src/shared/clock.js';

const KEY = 'pod_key_for_guard_emulation_0001';
const INPUT = {
  model: 'org/model',
  servedName: 'served',
  maxModelLen: 4096,
  gpuMemoryUtilization: 0.9,
  podKey: KEY,
};

describe('emulated pods behind the guard', () => {
  let emu: Emulator;
  let clock: ManualClock;
  before(async () => {
    clock = new ManualClock(Date.now());
    emu = await startEmulator({ clock, schedule: { provisioningMs: 10, startingMs: 10, loadMs: 10 } });
  });
  after(() => emu.close());

  async function pod(start: { args: string; env: Record<string, string> }): Promise<string> {
    const api = createRunPodClient({ baseUrl: emu.apiUrl, apiKey: emu.apiKey, clock });
    const created = await api.createPod({
      name: `runpod-llm-${Math.random().toString(36).slice(2, 10)}`,
      image: 'vllm/vllm-openai:v0.11.0',
      args: start.args,
      env: start.env,
      ports: ['8000/http'],
      gpu: { id: 'NVIDIA RTX A5000', count: 1 },
    });
    clock.advance(100);
    await api.getPod(created.id);
    return emu.pods.url(created.id, 8000);
  }

  it("a guarded pod answers only the guard's routes, with the key", async () => {
    const url = await pod(guardedPodStart(INPUT));
    assert.equal((await fetch(`${url}/health`)).status, 200);
    assert.equal((await fetch(`${url}/v1/models`)).status, 401);
    assert.equal(
      (await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).status,
      200,
    );
    for (const path of ['/invocations', '/pooling', '/metrics', '/pause', '/v1/models?x=1']) {
      const res = await fetch(`${url}${path}`, {
        method: path === '/v1/models?x=1' ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${KEY}` },
        body: path === '/v1/models?x=1' ? null : '{"prompt":"x"}',
      });
      assert.equal(res.status, 404, path);
    }
  });

  it("an unguarded pod leaves vLLM's open routes open, as real vLLM does", async () => {
    const url = await pod(unguardedPodStart(INPUT));
    assert.equal((await fetch(`${url}/invocations`, { method: 'POST', body: '{"prompt":"x"}' })).status, 200);
  });
});
