import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Emulator, startEmulator } from '../../src/emulator/emulator.js';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { createRunPodClient, type RunPodClient } from '../../src/runpod/client.js';
import { httpRequest, rawRequest, type RunningGuard, startGuard } from './run-guard.js';

const KEY = 'vk_guard_lease_test_0123456789';
const MODEL = 'leased-model';
const AUTH = { authorization: `Bearer ${KEY}` };

/**
 * The guard's self-stop (src/guard/guard.py, SECURITY.md "The pod URL"), with the real guard
 * under python3 and the emulator as RunPod: the pod-scoped key and pod id are what RunPod puts in
 * every pod's env (RUNPOD_API_KEY, RUNPOD_POD_ID). Lease of 2 s, checked every second.
 */
describe('guard self-stop: the lease and the stop time', () => {
  let emu: Emulator;
  let api: RunPodClient;
  let vllm: VllmStandin;
  const guards: RunningGuard[] = [];

  before(async () => {
    emu = await startEmulator({ schedule: { provisioningMs: 10, startingMs: 10, loadMs: 10 } });
    api = createRunPodClient({ baseUrl: emu.apiUrl, apiKey: emu.apiKey, retries: 0 });
    vllm = await startVllmStandin({ model: MODEL, apiKey: KEY });
  });
  after(async () => {
    await Promise.all(guards.map((g) => g.close()));
    await vllm.close();
    await emu.close();
  });

  async function runningPod(): Promise<string> {
    const created = await api.createPod({ name: `runpod-llm-${Math.random().toString(36).slice(2, 10)}`, image: 'vllm/vllm-openai:v0.11.0', ports: ['8000/http'], gpu: { id: 'NVIDIA RTX A5000', count: 1 } });
    await until(() => emu.pods.get(created.id)?.status === 'RUNNING', 'the pod to run');
    return created.id;
  }

  async function guardFor(podId: string, env: Record<string, string> = {}): Promise<RunningGuard> {
    const guard = await startGuard({
      GUARD_UPSTREAM: vllm.url,
      GUARD_API_KEY: KEY,
      GUARD_LEASE_TICK: '1',
      GUARD_RUNPOD_API_URL: emu.apiUrl,
      RUNPOD_POD_ID: podId,
      RUNPOD_API_KEY: emu.apiKey,
      ...env,
    });
    guards.push(guard);
    return guard;
  }

  async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  /** Sends `request` every 400 ms for `ms` (five renewals per lease), returning the statuses. */
  async function keepSending(guard: RunningGuard, request: string, ms: number): Promise<number[]> {
    const statuses: number[] = [];
    for (const end = Date.now() + ms; Date.now() < end; await sleep(400)) statuses.push((await rawRequest(guard.port, request)).status);
    return statuses;
  }

  const lease = httpRequest('POST', '/runpod-llm/lease', AUTH);

  it('renewed leases keep the pod; once they stop, the guard stops its pod through RunPod\'s API', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '2' });
    const statuses = await keepSending(guard, lease, 3_500);
    assert.ok(statuses.length >= 5 && statuses.every((s) => s === 204), JSON.stringify(statuses));
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING', 'renewed for longer than the lease: still running');
    assert.ok(!guard.lines().some((l) => l.includes('self-stop: lease expired')));

    await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the guard to stop the pod');
    await until(() => guard.lines().some((l) => l.includes('stopping pod')), 'the guard\'s line');
    assert.ok(guard.lines().some((l) => new RegExp(`^guard self-stop: lease expired \\(nothing from the manager for [23] s\\); stopping pod ${podId}: HTTP 200$`).test(l)), guard.lines().join('\n'));
    assert.match(guard.lines().join('\n'), /^guard self-stop: lease 2 s, stop at none$/m);
    const all = guard.lines().join('\n');
    assert.ok(!all.includes(emu.apiKey) && !all.includes(KEY), 'no key in the guard\'s log');
  });

  it('every authorised request renews the lease too; a wrong key is refused and renews nothing', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '2' });
    const chat = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    const request = httpRequest('POST', '/v1/chat/completions', { ...AUTH, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(chat)) }, chat);
    assert.ok((await keepSending(guard, request, 3_500)).every((s) => s === 200));
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING');

    const wrong = httpRequest('POST', '/runpod-llm/lease', { authorization: 'Bearer not-the-pod-key-000000' });
    const refused = keepSending(guard, wrong, 4_000);
    await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the lease to run out despite wrong-key renewals');
    assert.ok((await refused).every((s) => s === 401));
    // GET on the lease route is not a route at all.
    assert.equal((await rawRequest(guard.port, httpRequest('GET', '/runpod-llm/lease', AUTH))).status, 404);
  });

  it('stops the pod at GUARD_STOP_AT whatever the lease says', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '600', GUARD_STOP_AT: String(Math.ceil(Date.now() / 1000) + 2) });
    const renewals = keepSending(guard, lease, 2_000);
    await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the stop time');
    await renewals;
    await until(() => guard.lines().some((l) => l.includes('stopping pod')), 'the guard\'s line');
    assert.ok(guard.lines().some((l) => l === `guard self-stop: stop time reached; stopping pod ${podId}: HTTP 200`), guard.lines().join('\n'));
  });

  it('a refused stop is logged with its status only, never the key, and the pod is left as it is', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '1', RUNPOD_API_KEY: 'rp_wrong_pod_scoped_key_1234' });
    await until(() => guard.lines().some((l) => l.includes('stopping pod')), 'the attempt');
    assert.ok(guard.lines().some((l) => l === `guard self-stop: lease expired (nothing from the manager for 1 s); stopping pod ${podId}: HTTP 401` || l === `guard self-stop: lease expired (nothing from the manager for 2 s); stopping pod ${podId}: HTTP 401`), guard.lines().join('\n'));
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
    assert.ok(!guard.lines().join('\n').includes('rp_wrong_pod_scoped_key_1234'));
  });

  it('without RunPod\'s pod env it says it cannot stop the pod, and keeps guarding', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '1', RUNPOD_POD_ID: '' });
    await until(() => guard.lines().some((l) => l.includes('RUNPOD_POD_ID or RUNPOD_API_KEY is not in the pod env')), 'the warning');
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
    assert.equal((await rawRequest(guard.port, httpRequest('GET', '/v1/models', AUTH))).status, 200);
  });
});
