import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PodAction, PodStatus } from '../../src/runpod/schemas.js';
import { POD_KEY, podRequest, rejection, SCHEDULE, startRig, type Rig } from './setup.js';

describe('emulator pod lifecycle', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig.emulator.close();
  });

  async function podIn(status: PodStatus): Promise<string> {
    const pod = await rig.client.createPod(podRequest());
    if (status === 'PROVISIONING') return pod.id;
    rig.clock.advance(SCHEDULE.provisioningMs);
    if (status === 'STARTING') return pod.id;
    rig.clock.advance(SCHEDULE.startingMs);
    if (status === 'EXITED') await rig.client.podAction(pod.id, 'stop');
    if (status === 'ERROR') rig.emulator.pods.kill(pod.id, 'ERROR');
    assert.equal((await rig.client.getPod(pod.id)).status, status);
    return pod.id;
  }

  it('goes PROVISIONING → STARTING → RUNNING on the schedule; runtime is null until RUNNING, then maps port 8000', async () => {
    const pod = await rig.client.createPod(podRequest());
    assert.equal(pod.status, 'PROVISIONING');
    assert.equal(pod.startedAt, null);
    rig.clock.advance(SCHEDULE.provisioningMs - 1);
    assert.equal((await rig.client.getPod(pod.id)).status, 'PROVISIONING');
    rig.clock.advance(1);
    const starting = await rig.client.getPod(pod.id);
    assert.equal(starting.status, 'STARTING');
    assert.equal(starting.runtime, null);
    rig.clock.advance(SCHEDULE.startingMs + 5_000);
    const running = await rig.client.getPod(pod.id);
    assert.equal(running.status, 'RUNNING');
    assert.equal(running.runtime?.uptime, 5);
    assert.equal(running.runtime?.gpus?.length, 1);
    const port = running.runtime?.ports?.[0];
    assert.equal(port?.private, 8000);
    assert.equal(port?.type, 'http');
    assert.equal(port?.ip, '127.0.0.1');
    assert.ok(typeof port?.public === 'number' && port.public > 0);
    assert.deepEqual(running.actions, ['stop', 'restart', 'terminate']);
  });

  const table: Array<[PodStatus, PodAction[]]> = [
    ['PROVISIONING', ['stop', 'terminate']],
    ['STARTING', ['stop', 'terminate']],
    ['RUNNING', ['stop', 'restart', 'terminate']],
    ['EXITED', ['start', 'terminate']],
    ['ERROR', ['start', 'terminate']],
  ];
  for (const [status, allowed] of table) {
    for (const action of ['start', 'stop', 'restart', 'terminate'] as const) {
      const ok = allowed.includes(action);
      it(`${status}: ${action} is ${ok ? 'allowed' : 'refused with 409 (RUNPOD_CONFLICT)'}`, async () => {
        const id = await podIn(status);
        assert.deepEqual((await rig.client.getPod(id)).actions, allowed);
        if (!ok) {
          const err = await rejection(rig.client.podAction(id, action));
          assert.equal((err as { code: string }).code, 'RUNPOD_CONFLICT');
          return;
        }
        const result = await rig.client.podAction(id, action);
        const expected = { stop: 'EXITED', start: 'STARTING', restart: 'STARTING', terminate: null }[action];
        assert.equal(result === null ? null : result.status, expected);
        if (action === 'terminate') assert.ok(!(await rig.client.listPods()).some((p) => p.id === id));
      });
    }
  }

  it('cost is the GPU price × count while provisioning/running and 0 when EXITED', async () => {
    const pod = await rig.client.createPod(
      podRequest({ gpu: { id: 'NVIDIA A100 80GB PCIe', count: 2 }, cloud: 'COMMUNITY' }),
    );
    assert.equal(pod.cost, 2.38);
    const stopped = await rig.client.podAction(pod.id, 'stop');
    assert.equal(stopped?.cost, 0);
  });

  it('unknown pods are RUNPOD_NOT_FOUND for get, action and delete', async () => {
    const calls = [
      () => rig.client.getPod('nope'),
      () => rig.client.podAction('nope', 'stop'),
      () => rig.client.deletePod('nope'),
    ];
    for (const call of calls) {
      assert.equal(((await rejection(call())) as { code: string }).code, 'RUNPOD_NOT_FOUND');
    }
  });
});

describe('emulator pod URL and vLLM stand-in', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig.emulator.close();
  });

  const get = async (url: string, key?: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(url, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } });
    return { status: res.status, text: await res.text() };
  };

  it('answers 502 until the model loads, then /health 200 empty and /v1/models with the pod key', async () => {
    const pod = await rig.client.createPod(podRequest());
    const url = rig.emulator.pods.url(pod.id);
    assert.equal(url, rig.emulator.podUrlTemplate.replace('{podId}', pod.id).replace('{port}', '8000'));
    assert.equal((await get(`${url}/health`)).status, 502);
    rig.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs);
    assert.equal(
      (await get(`${url}/health`)).status,
      502,
      'RUNNING is not ready: the model is still loading',
    );
    rig.clock.advance(SCHEDULE.loadMs);
    assert.deepEqual(await get(`${url}/health`), { status: 200, text: '' });
    const models = await get(`${url}/v1/models`, POD_KEY);
    assert.equal(models.status, 200);
    const data = (JSON.parse(models.text) as { data: Array<{ id: string; max_model_len: number }> }).data;
    assert.equal(data[0]?.id, 'qwen-coder');
    assert.equal(data[0]?.max_model_len, 16384);
    assert.deepEqual(await get(`${url}/v1/models`), { status: 401, text: '{"error":"Unauthorized"}' });
    assert.equal((await get(`${url}/version`)).status, 200, 'vLLM open routes need no key, as in vLLM');
    assert.equal(
      (await get(rig.emulator.pods.url(pod.id, 8001) + '/health')).status,
      502,
      'a port nothing listens on',
    );
    assert.equal(
      rig.emulator.pods.standin(pod.id)?.requests.some((r) => r.path === '/v1/models'),
      true,
    );
  });

  it('serves chat completions through the pod URL, streaming too', async () => {
    const pod = await rig.client.createPod(podRequest());
    rig.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    const res = await fetch(`${rig.emulator.pods.url(pod.id)}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${POD_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'qwen-coder',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /chat\.completion\.chunk/);
    assert.ok(text.trimEnd().endsWith('data: [DONE]'));
  });

  it('takes served name and key from the JSON start-command form, the key also from env VLLM_API_KEY', async () => {
    const cmd =
      'pip install -q guard && vllm serve "Qwen/Qwen2.5-7B-Instruct" --host 0.0.0.0 --port 8000 --served-model-name coder --api-key "$VLLM_API_KEY"';
    const pod = await rig.client.createPod(
      podRequest({
        args: JSON.stringify({ entrypoint: ['bash', '-c'], cmd: [cmd] }),
        env: { VLLM_API_KEY: 'env-held-key-123' },
      }),
    );
    rig.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    const models = await get(`${rig.emulator.pods.url(pod.id)}/v1/models`, 'env-held-key-123');
    assert.equal(models.status, 200);
    assert.equal((JSON.parse(models.text) as { data: Array<{ id: string }> }).data[0]?.id, 'coder');
  });

  it('a stopped pod answers 502 again; a restart reloads the model', async () => {
    const pod = await rig.client.createPod(podRequest());
    rig.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    const url = `${rig.emulator.pods.url(pod.id)}/health`;
    assert.equal((await get(url)).status, 200);
    await rig.client.podAction(pod.id, 'restart');
    assert.equal((await get(url)).status, 502);
    rig.clock.advance(SCHEDULE.startingMs + SCHEDULE.loadMs);
    assert.equal((await get(url)).status, 200);
    await rig.client.podAction(pod.id, 'stop');
    assert.equal((await get(url)).status, 502);
  });
});

describe('emulator faults', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig.emulator.close();
  });

  const admin = (body: unknown, key = rig.emulator.apiKey): Promise<Response> =>
    fetch(`${rig.emulator.apiUrl}/_emulator/faults`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const ready = SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs;

  it('the admin route needs the API key and rejects unknown settings with 422', async () => {
    assert.equal((await admin({ noCapacity: ['x'] }, 'wrong')).status, 401);
    assert.equal((await admin({ noSuchFault: true })).status, 422);
    assert.equal((await admin({ noCapacity: ['NVIDIA L40S'] })).status, 200);
    assert.deepEqual(rig.emulator.faults.settings.noCapacity, ['NVIDIA L40S']);
    assert.equal((await admin({ reset: true })).status, 200);
    assert.deepEqual(rig.emulator.faults.settings.noCapacity, []);
  });

  it('podDies (admin route) turns a RUNNING pod into ERROR, still billed, start allowed', async () => {
    const pod = await rig.client.createPod(podRequest());
    rig.clock.advance(ready);
    assert.equal((await admin({ podDies: { podId: pod.id, status: 'ERROR' } })).status, 200);
    const dead = await rig.client.getPod(pod.id);
    assert.equal(dead.status, 'ERROR');
    assert.equal(dead.runtime, null);
    assert.deepEqual(dead.actions, ['start', 'terminate']);
    assert.equal((await fetch(`${rig.emulator.pods.url(pod.id)}/health`)).status, 502);
  });

  it('podHealth makes /health 503 (engine died) while the pod stays RUNNING', async () => {
    const pod = await rig.client.createPod(podRequest());
    rig.clock.advance(ready);
    assert.equal((await admin({ podHealth: { podId: pod.id, healthy: false } })).status, 200);
    assert.equal((await fetch(`${rig.emulator.pods.url(pod.id)}/health`)).status, 503);
    assert.equal((await rig.client.getPod(pod.id)).status, 'RUNNING');
  });

  it('zeroGpusOnStart: a started pod comes back RUNNING with no GPUs and vLLM never answers', async () => {
    const pod = await rig.client.createPod(podRequest());
    rig.clock.advance(ready);
    await rig.client.podAction(pod.id, 'stop');
    rig.emulator.faults.set({ zeroGpusOnStart: 1 });
    await rig.client.podAction(pod.id, 'start');
    rig.clock.advance(SCHEDULE.startingMs + 60_000);
    const back = await rig.client.getPod(pod.id);
    assert.equal(back.status, 'RUNNING');
    assert.deepEqual(back.runtime?.gpus, []);
    assert.equal((await fetch(`${rig.emulator.pods.url(pod.id)}/health`)).status, 502);
    assert.equal(rig.emulator.faults.settings.zeroGpusOnStart, 0);
  });

  it('standinNeverLoads keeps the pod URL at 502; standinLoadDelayMs overrides the load time', async () => {
    rig.emulator.faults.set({ standinNeverLoads: true });
    const stuck = await rig.client.createPod(podRequest());
    rig.clock.advance(ready + 3_600_000);
    assert.equal((await fetch(`${rig.emulator.pods.url(stuck.id)}/health`)).status, 502);
    rig.emulator.faults.set({ standinNeverLoads: false, standinLoadDelayMs: 50_000 });
    const slow = await rig.client.createPod(podRequest());
    rig.clock.advance(ready);
    assert.equal((await fetch(`${rig.emulator.pods.url(slow.id)}/health`)).status, 502);
    rig.clock.advance(50_000);
    assert.equal((await fetch(`${rig.emulator.pods.url(slow.id)}/health`)).status, 200);
    rig.emulator.faults.reset();
  });

  it('insufficientBalance answers 402 (RUNPOD_INSUFFICIENT_BALANCE)', async () => {
    rig.emulator.faults.set({ insufficientBalance: true });
    const err = await rejection(rig.client.createPod(podRequest()));
    rig.emulator.faults.reset();
    assert.equal((err as { code: string }).code, 'RUNPOD_INSUFFICIENT_BALANCE');
  });
});
