import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { probeReadiness } from '../../src/lifecycle/readiness.js';
import { isAppError } from '../../src/shared/errors.js';
import { type RunningGuard, startGuard } from '../guard/run-guard.js';
import { type LifecycleRig, MIN, startLifecycleRig } from './rig.js';

const KEY = 'vk_readiness_through_the_guard_0123';
const MODEL = 'guarded-model';

/**
 * Readiness as `up` and the watchdog run it, through the real guard (this machine's python3 on
 * src/guard/guard.py) in front of a vLLM stand-in: what a guarded pod's public URL answers.
 * The pod's status comes from the emulator; its HTTP answers from the guard.
 */
describe('readiness through the pod-side guard', () => {
  let rig: LifecycleRig;
  let vllm: VllmStandin;
  let guard: RunningGuard;
  let podId: string;

  before(async () => {
    rig = await startLifecycleRig();
    vllm = await startVllmStandin({ model: MODEL, apiKey: KEY, loaded: false });
    guard = await startGuard({ GUARD_UPSTREAM: vllm.url, GUARD_API_KEY: KEY });
    podId = (
      await rig.api.createPod({
        name: 'runpod-llm-guardrdy',
        image: 'vllm/vllm-openai:v0.11.0',
        ports: ['8000/http'],
        gpu: { id: 'NVIDIA RTX A5000', count: 1 },
      })
    ).id;
    rig.clock.advance(2 * MIN);
  });
  after(async () => {
    await guard.close();
    await vllm.close();
    await rig.close();
  });

  const probe = (apiKey: string) =>
    probeReadiness(
      { api: rig.api, fetch: globalThis.fetch },
      { podId, podUrl: guard.url, apiKey, model: MODEL, renewLease: true },
    );

  it("waits while vLLM loads: the guard passes /health through as 502, and each probe renews the guard's lease", async () => {
    const outcome = await probe(KEY);
    assert.equal(outcome.ready, false);
    assert.equal(outcome.step, 'health');
    assert.match(outcome.waitingFor, /502/);
    // A model loading for longer than the lease must not be stopped by its own guard.
    for (
      let i = 0;
      i < 50 && !guard.lines().some((l) => /^guard POST \/runpod-llm\/lease 200 \d+ms$/.test(l));
      i++
    )
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      guard.lines().some((l) => /^guard POST \/runpod-llm\/lease 200 \d+ms$/.test(l)),
      guard.lines().join('\n'),
    );
  });

  it('is ready once /health answers 200 with an empty body and /v1/models lists the model with the key', async () => {
    vllm.setLoaded(true);
    const health = await fetch(`${guard.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), '');
    const outcome = await probe(KEY);
    assert.equal(outcome.ready, true, outcome.waitingFor);
    assert.deepEqual(
      vllm.requests.map((r) => r.path).slice(-2),
      ['/health', '/v1/models'],
      'both probes reached vLLM through the guard',
    );
  });

  it('fails for good when the guard refuses the key (401), instead of waiting out the timeout', async () => {
    await assert.rejects(
      probe('vk_not_the_pod_key_0000000000'),
      (err) =>
        isAppError(err) && err.code === 'LIFECYCLE_POD_FAILED' && /refused its own API key/.test(err.message),
    );
  });
});
