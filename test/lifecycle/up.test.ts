import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { decodeGuardEnv, guardVersion, readGuardSource } from '../../src/guard/recipe.js';
import { down } from '../../src/lifecycle/down.js';
import { waitForReady } from '../../src/lifecycle/readiness.js';
import { resumeRun } from '../../src/lifecycle/resume.js';
import { planUp, up } from '../../src/lifecycle/up.js';
import { isAppError } from '../../src/shared/errors.js';
import { listAudit } from '../../src/state/audit.js';
import { INSTALL_ENV, installId } from '../../src/state/install.js';
import { getPod, listActivePods } from '../../src/state/pods.js';
import { listReadyRoutes } from '../../src/state/routes.js';
import { activeRun, getRun } from '../../src/state/runs.js';
import { type LifecycleRig, MIN, startLifecycleRig, T0 } from './rig.js';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('up (lifecycle, simulated time)', () => {
  let rig: LifecycleRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('creates the pod per the recipe, waits for health and the model, then writes the route', async () => {
    rig = await startLifecycleRig();
    const steps: string[] = [];
    const progress: string[] = [];
    const result = await up(rig.deps, rig.settings, {
      onStep: (t) => steps.push(t),
      onProgress: (p) => progress.push(`${p.step}:${p.status}`),
    });

    const [created] = rig.emulator.pods.created();
    assert.ok(created);
    assert.equal(rig.emulator.pods.created().length, 1);
    const req = created.request;
    assert.equal(req.image, 'vllm/vllm-openai:v0.11.0');
    assert.deepEqual(req.ports, ['8000/http']);
    assert.equal(req.env.HF_HOME, '/workspace/hf');
    assert.equal(req.env.HF_TOKEN, undefined, 'no HF_TOKEN unless set');
    // Guarded by default: the JSON start command, the guard's source and the key in the env only.
    const start = JSON.parse(req.args) as { entrypoint: string[]; cmd: string[] };
    assert.deepEqual(start.entrypoint, ['bash', '-c']);
    assert.match(
      start.cmd[0] ?? '',
      /^vllm serve Qwen\/Qwen2\.5-Coder-7B-Instruct --host 127\.0\.0\.1 --port 8001 --served-model-name Qwen\/Qwen2\.5-Coder-7B-Instruct --max-model-len 16384 --gpu-memory-utilization 0\.90 &$/m,
    );
    assert.equal(decodeGuardEnv(req.env.RUNPOD_LLM_GUARD ?? ''), readGuardSource());
    assert.match(req.env.VLLM_API_KEY ?? '', /^vk_[0-9a-f]{64}$/);
    assert.ok(!req.args.includes(req.env.VLLM_API_KEY ?? '-'), 'the pod key is on no command line');
    assert.match(created.name, /^runpod-llm-[0-9a-z]{8}$/);
    assert.equal(created.gpu?.id, 'NVIDIA RTX A5000', 'cheapest type with 24 GB in stock');

    // Readiness went through every stage, and only became ready once the model loaded (90 s).
    assert.ok(
      progress.includes('running:PROVISIONING') && progress.includes('health:RUNNING'),
      progress.join(' '),
    );
    assert.equal(progress.at(-1), 'ready:RUNNING');
    assert.ok(result.readyAfterMs >= 90_000 && result.readyAfterMs < 110_000, String(result.readyAfterMs));

    const row = getPod(rig.state, result.pod.podId);
    assert.ok(row?.readyAt !== null && row?.readyAt !== undefined);
    assert.equal(req.env.VLLM_API_KEY, row.apiKey, 'the state keeps the pod key it passed');
    assert.equal(row.guard, guardVersion(readGuardSource()), 'the state records the guard');
    // Readiness went through the guard; its public URL shows only the allow-listed routes.
    const url = rig.emulator.pods.url(result.pod.podId);
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), '', '/health through the guard: status only');
    assert.equal((await fetch(`${url}/v1/models`)).status, 401, 'the key is needed');
    assert.equal(
      (await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${row.apiKey}` } })).status,
      200,
    );
    assert.equal(
      (
        await fetch(`${url}/invocations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"prompt":"x"}',
        })
      ).status,
      404,
      "vLLM's open routes are closed",
    );
    const [route] = listReadyRoutes(rig.state);
    assert.equal(route?.baseUrl, `${rig.emulator.pods.url(result.pod.podId)}/v1`);
    assert.equal(route?.apiKey, row.apiKey);
    // Once ready, one lease renewal records whether the guarded pod can stop itself.
    assert.deepEqual(
      listAudit(rig.state)
        .map((e) => e.action)
        .reverse(),
      ['run_start', 'create', 'ready', 'pod_self_stop_check'],
    );
    assert.equal(listAudit(rig.state)[0]?.details?.verdict, 'ok');
    assert.ok(!JSON.stringify(listAudit(rig.state)).includes(row.apiKey), 'no secret in the audit');
  });

  it('unguarded (manager.guard false): plain vLLM arguments, vLLM on the public port, recorded as unguarded', async () => {
    rig = await startLifecycleRig({ manager: { guard: false } });
    const result = await up(rig.deps, rig.settings);
    const req = rig.emulator.pods.created()[0]?.request;
    assert.match(req?.args ?? '', /^Qwen\/Qwen2\.5-Coder-7B-Instruct --host 0\.0\.0\.0 --port 8000 /);
    assert.equal(req?.env.RUNPOD_LLM_GUARD, undefined);
    assert.equal(req?.env.VLLM_API_KEY, result.pod.apiKey, 'the key in the env, not in args');
    assert.equal(getPod(rig.state, result.pod.podId)?.guard, null);
    assert.equal(listAudit(rig.state).find((e) => e.action === 'create')?.details?.guard, 'off');
    // What the guard exists for: vLLM's open routes answer on the public URL.
    const open = await fetch(`${rig.emulator.pods.url(result.pod.podId)}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x' }),
    });
    assert.notEqual(open.status, 404);
  });

  it('passes HF_TOKEN through when set, and refuses a second run while one is active', async () => {
    rig = await startLifecycleRig();
    await up({ ...rig.deps, hfToken: 'hf_secret_token_value' }, rig.settings);
    assert.equal(rig.emulator.pods.created()[0]?.request.env.HF_TOKEN, 'hf_secret_token_value');
    const err = await rejection(up(rig.deps, rig.settings));
    assert.ok(isAppError(err) && err.code === 'STATE_RUN_ACTIVE', String(err));
    assert.equal(rig.emulator.pods.created().length, 1);
  });

  it('falls back to the next GPU type when RunPod has no capacity', async () => {
    rig = await startLifecycleRig();
    rig.emulator.faults.set({ noCapacity: ['NVIDIA RTX A5000'] });
    const result = await up(rig.deps, rig.settings);
    assert.deepEqual(result.noCapacity, ['NVIDIA RTX A5000']);
    assert.equal(result.pod.gpuTypeId, 'NVIDIA RTX A6000');
    assert.equal(rig.emulator.pods.created().length, 1);
    assert.ok(
      listAudit(rig.state).some((e) => e.action === 'no_capacity' && e.details?.gpu === 'NVIDIA RTX A5000'),
    );
  });

  it('honours the user GPU order and fails with RUNPOD_NO_CAPACITY when none has capacity', async () => {
    rig = await startLifecycleRig({ manager: { gpu_types: ['NVIDIA GeForce RTX 4090', 'NVIDIA L40S'] } });
    rig.emulator.faults.set({ noCapacity: ['*'] });
    const err = await rejection(up(rig.deps, rig.settings));
    assert.ok(isAppError(err) && err.code === 'RUNPOD_NO_CAPACITY', String(err));
    assert.match((err as Error).message, /NVIDIA GeForce RTX 4090, NVIDIA L40S/);
    assert.equal(activeRun(rig.state), undefined, 'the run ended');
  });

  it('adopts a pod that RunPod created despite answering 500, never a duplicate', async () => {
    rig = await startLifecycleRig();
    rig.emulator.faults.set({ createFailure: { status: 500, createPod: true, times: 1 } });
    const result = await up(rig.deps, rig.settings);
    assert.equal(result.adopted, true);
    assert.equal(rig.emulator.pods.created().length, 1, 'one pod on RunPod');
    assert.equal(listActivePods(rig.state).length, 1);
    assert.equal(listReadyRoutes(rig.state)[0]?.podId, result.pod.podId);
  });

  it('a create that fails unconfirmed is remembered: the pod RunPod creates late under its name is terminated by the next pass, without --reap', async () => {
    rig = await startLifecycleRig();
    rig.emulator.faults.set({ createFailure: { status: 503, createPod: false, times: 100 } });
    const err = await rejection(up(rig.deps, rig.settings));
    assert.ok(isAppError(err) && err.code === 'RUNPOD_UNAVAILABLE', String(err));
    const unconfirmed = listAudit(rig.state).filter((e) => e.action === 'create_unconfirmed');
    assert.equal(unconfirmed.length, 1);
    const name = String(unconfirmed[0]?.details?.name);
    assert.match(err.hint ?? '', new RegExp(`may still create pod "${name}".*runpod-llm watch`));
    assert.equal(rig.emulator.pods.created().length, 0);

    // Later, RunPod fulfils the create after all (a pod of this install, under that name).
    rig.emulator.faults.reset();
    const late = await rig.api.createPod({
      ...podRequestLike(name),
      env: { [INSTALL_ENV]: installId(rig.home) },
    });
    const report = await rig.passAt(5);
    assert.ok(
      report.actions.some(
        (a) =>
          a.action.type === 'terminate' && a.action.podId === late.id && a.action.reason === 'stray_create',
      ),
      JSON.stringify(report.actions),
    );
    assert.equal(rig.emulator.pods.get(late.id), undefined, 'terminated on RunPod');

    // The same name from another install's env, or an untagged pod, is only reported (never reaped without --reap).
    const foreign = await rig.api.createPod({
      ...podRequestLike(name),
      env: { [INSTALL_ENV]: 'i-0123456789ab' },
    });
    const next = await rig.passAt(6);
    assert.ok(rig.emulator.pods.get(foreign.id), "another install's pod is left alone");
    assert.ok(next.orphans.some((o) => o.podId === foreign.id && o.otherInstall === true));
  });

  it('terminates the pod and ends the run when it is not ready in time', async () => {
    rig = await startLifecycleRig({ manager: { readiness_timeout: '10m' } });
    rig.emulator.faults.set({ standinNeverLoads: true });
    const err = await rejection(up(rig.deps, rig.settings));
    assert.ok(isAppError(err) && err.code === 'LIFECYCLE_READINESS_TIMEOUT', String(err));
    assert.match((err as Error).message, /not ready after 10m.*\/health.*502.*terminated/);
    assert.ok(rig.clock.now() - T0 >= 10 * MIN && rig.clock.now() - T0 < 11 * MIN);
    assert.equal(rig.emulator.pods.list().length, 0, 'terminated on RunPod');
    const [pod] = rig.emulator.pods.created();
    const row = getPod(rig.state, pod?.id ?? '');
    assert.equal(row?.endReason, 'readiness_timeout');
    assert.equal(getRun(rig.state, row?.runId ?? '')?.endReason, 'readiness_timeout');
    assert.equal(listReadyRoutes(rig.state).length, 0);
    assert.ok(listAudit(rig.state).some((e) => e.action === 'terminate' && e.reason === 'readiness_timeout'));
  });

  it('gives up at once when the pod dies while starting', async () => {
    rig = await startLifecycleRig();
    const pending = up(rig.deps, rig.settings, {
      onProgress: (p) => {
        const id = rig?.emulator.pods.list()[0]?.id;
        if (p.status === 'STARTING' && id !== undefined) rig?.emulator.pods.kill(id, 'ERROR');
      },
    });
    const err = await rejection(pending);
    assert.ok(isAppError(err) && err.code === 'LIFECYCLE_POD_FAILED', String(err));
    assert.equal(rig.emulator.pods.list().length, 0);
  });

  it('fails readiness for good when vLLM refuses the pod key, instead of waiting 20 minutes', async () => {
    rig = await startLifecycleRig();
    const pod = await rig.api.createPod({
      name: 'runpod-llm-keytest',
      image: 'vllm/vllm-openai:v0.11.0',
      args: 'm --port 8000 --served-model-name m --api-key right-key',
      ports: ['8000/http'],
      gpu: { id: 'NVIDIA RTX A5000', count: 1 },
    });
    const target = { podId: pod.id, podUrl: rig.emulator.pods.url(pod.id), apiKey: 'wrong-key', model: 'm' };
    const err = await rejection(waitForReady(rig.deps, target, { timeoutMs: 20 * MIN, pollMs: 10_000 }));
    assert.ok(isAppError(err) && err.code === 'LIFECYCLE_POD_FAILED', String(err));
    assert.match((err as Error).message, /refused its own API key/);
    assert.ok(rig.clock.now() - T0 < 3 * MIN, 'failed as soon as /v1/models answered');
  });

  it('resume replaces a stopped pod that comes back without GPUs, in the same run', async () => {
    rig = await startLifecycleRig({ manager: { idle_action: 'stop' } });
    const first = await up(rig.deps, rig.settings);
    await down(rig.deps, { stop: true });
    assert.equal(rig.emulator.pods.get(first.pod.podId)?.status, 'EXITED');
    rig.emulator.faults.set({ zeroGpusOnStart: 1 });
    const resumed = await resumeRun(rig.deps, first.run, rig.settings);
    assert.equal(resumed?.replaced, true);
    assert.notEqual(resumed?.pod.podId, first.pod.podId);
    assert.equal(resumed?.pod.runId, first.run.runId);
    assert.equal(rig.emulator.pods.get(first.pod.podId), undefined, 'the GPU-less pod was terminated');
    assert.equal(listReadyRoutes(rig.state)[0]?.podId, resumed?.pod.podId);
  });

  it('plans without creating anything: first GPU, fallbacks and the worst case', async () => {
    rig = await startLifecycleRig({ manager: { runtime_limit: '2h', budget_usd: 0.3 } });
    const plan = await planUp(rig.api, rig.settings);
    assert.equal(plan.candidates[0]?.id, 'NVIDIA RTX A5000');
    assert.deepEqual(plan.worstCase, { usd: 0.3, boundBy: 'budget' });
    assert.equal(rig.emulator.pods.created().length, 0);
    const unknown = await rejection(planUp(rig.api, { ...rig.settings, gpuIds: ['NVIDIA RTX 9999'] }));
    assert.ok(isAppError(unknown) && unknown.code === 'CONFIG_GPU_UNKNOWN');
  });
});

/** A GPU pod request like `up`'s, under `name`. */
function podRequestLike(name: string) {
  return {
    name,
    image: 'vllm/vllm-openai:v0.11.0',
    gpu: { id: 'NVIDIA RTX A5000', count: 1 },
    ports: ['8000/http'],
  };
}
