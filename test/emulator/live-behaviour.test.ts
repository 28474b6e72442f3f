import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { guardedPodStart, readGuardSource } from '../../src/guard/recipe.js';
import { loadRunPodSpec } from '../helpers/openapi.js';
import { POD_KEY, podRequest, rejection, SCHEDULE, startRig, type Rig } from './setup.js';

/*
 * The emulator's live behaviours (docs/runpod-contract.md, "Live behaviour the spec does not describe"): restart
 * in place, the logs endpoint, the args mode, pod-scoped keys, CPU pods, foreign pods, slow
 * creates and 429 bursts. Each answer the spec describes is validated against openapi-v2.json.
 */

const RESTART = 3_000;
const CRASH = 2_000;

describe('emulator: live behaviour', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.emulator.close();
    rig = undefined;
  });

  async function start(options: Parameters<typeof startRig>[0] = {}): Promise<Rig> {
    rig = await startRig({ schedule: { ...SCHEDULE, restartMs: RESTART, crashMs: CRASH }, ...options });
    return rig;
  }

  async function health(r: Rig, id: string): Promise<number> {
    return (await fetch(`${r.emulator.pods.url(id)}/health`)).status;
  }

  async function sse(
    r: Rig,
    id: string,
    query = '',
    key = r.emulator.apiKey,
  ): Promise<{
    status: number;
    type: string | null;
    events: Array<{ id: string; data: { ts: string; source: string; line: string } }>;
  }> {
    const controller = new AbortController();
    const res = await fetch(`${r.emulator.apiUrl}/v2/pods/${id}/logs${query}`, {
      headers: { authorization: `Bearer ${key}` },
      signal: controller.signal,
    });
    if (res.status !== 200) return { status: res.status, type: res.headers.get('content-type'), events: [] };
    const reader = res.body?.getReader();
    let text = '';
    // The stream stays open (it follows the log): read the backfill, then stop.
    const deadline = Date.now() + 400;
    while (reader !== undefined && Date.now() < deadline) {
      const chunk = await Promise.race([
        reader.read(),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 150)),
      ]);
      if (chunk === undefined || chunk.done === true) break;
      text += Buffer.from(chunk.value).toString('utf8');
    }
    controller.abort();
    const events = text
      .split('\n\n')
      .filter((block) => block.trim() !== '')
      .map((block) => {
        const lines = block.split('\n');
        return {
          id: lines.find((l) => l.startsWith('id: '))?.slice(4) ?? '',
          data: JSON.parse(lines.find((l) => l.startsWith('data: '))?.slice(6) ?? '{}') as {
            ts: string;
            source: string;
            line: string;
          },
        };
      });
    return { status: res.status, type: res.headers.get('content-type'), events };
  }

  it('a process that dies is restarted in place: RUNNING throughout, uptime back to 0, 502 while down, one start container line per start', async () => {
    const r = await start();
    const pod = await r.client.createPod(podRequest());
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs + 60_000);
    assert.equal(await health(r, pod.id), 200);
    const before = await r.client.getPod(pod.id);
    assert.equal(before.runtime?.uptime, 61);

    r.emulator.pods.crash(pod.id);
    const down = await r.client.getPod(pod.id);
    assert.equal(down.status, 'RUNNING');
    assert.equal(await health(r, pod.id), 502);
    r.clock.advance(RESTART + 5_000);
    const restarted = await r.client.getPod(pod.id);
    assert.equal(restarted.status, 'RUNNING');
    assert.equal(restarted.runtime?.uptime, 5, 'uptime counts from the new start');
    r.clock.advance(SCHEDULE.loadMs);
    assert.equal(await health(r, pod.id), 200, 'the model loads again');
    const system = r.emulator.pods
      .logs(pod.id)
      .filter((l) => l.source === 'system' && l.line === 'start container');
    assert.equal(system.length, 2);
  });

  it('a crash loop: every start dies before loading; start container lines pile up and the pod never answers', async () => {
    const r = await start();
    const pod = await r.client.createPod(podRequest());
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    r.emulator.pods.crash(pod.id, true);
    let lastUptime = Infinity;
    let fell = 0;
    for (let i = 0; i < 10; i++) {
      r.clock.advance(1_000);
      const p = await r.client.getPod(pod.id);
      assert.equal(p.status, 'RUNNING');
      if ((p.runtime?.uptime ?? 0) < lastUptime) fell++;
      lastUptime = p.runtime?.uptime ?? 0;
      assert.equal(await health(r, pod.id), 502);
    }
    assert.ok(fell >= 2, `uptime fell ${fell} times`);
    const logs = r.emulator.pods.logs(pod.id);
    assert.ok(logs.filter((l) => l.line === 'start container').length >= 3);
    assert.ok(logs.some((l) => l.source === 'container' && /CUDA out of memory/.test(l.line)));
  });

  it('onExit "exit": the pod becomes EXITED instead', async () => {
    const r = await start({ behaviour: { onExit: 'exit' } });
    const pod = await r.client.createPod(podRequest());
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    r.emulator.pods.crash(pod.id);
    assert.equal((await r.client.getPod(pod.id)).status, 'EXITED');
  });

  it('args mode json honours the guarded JSON start command: its echo lines and vLLM boot lines in the logs, the pod serves', async () => {
    const r = await start();
    const startCmd = guardedPodStart(
      {
        model: 'Qwen/Qwen3-8B',
        servedName: 'qwen3',
        maxModelLen: 8192,
        gpuMemoryUtilization: 0.9,
        podKey: POD_KEY,
      },
      readGuardSource(),
    );
    const args = JSON.stringify({
      entrypoint: ['bash', '-c'],
      cmd: [
        `echo "runpod-llm: start test"\n${(JSON.parse(startCmd.args) as { cmd: string[] }).cmd[0] ?? ''}`,
      ],
    });
    const pod = await r.client.createPod(podRequest({ args, env: startCmd.env }));
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    assert.equal(await health(r, pod.id), 200);
    const container = r.emulator.pods
      .logs(pod.id)
      .filter((l) => l.source === 'container')
      .map((l) => l.line);
    assert.equal(container[0], 'runpod-llm: start test');
    assert.ok(container.includes('INFO:     Application startup complete.'));
  });

  it('args mode plain: the JSON text reaches `vllm serve` as plain arguments → argparse error → crash loop, status RUNNING', async () => {
    const r = await start({ behaviour: { argsMode: 'plain' } });
    const startCmd = guardedPodStart(
      {
        model: 'Qwen/Qwen3-8B',
        servedName: 'qwen3',
        maxModelLen: 8192,
        gpuMemoryUtilization: 0.9,
        podKey: POD_KEY,
      },
      readGuardSource(),
    );
    const pod = await r.client.createPod(podRequest({ args: startCmd.args, env: startCmd.env }));
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs + 3 * (RESTART + CRASH));
    const p = await r.client.getPod(pod.id);
    assert.equal(p.status, 'RUNNING');
    assert.equal(await health(r, pod.id), 502);
    const logs = r.emulator.pods.logs(pod.id);
    assert.ok(
      logs.some(
        (l) => l.source === 'container' && l.line.startsWith('vllm serve: error: unrecognized arguments: '),
      ),
    );
    assert.ok(logs.filter((l) => l.line === 'start container').length >= 3);
    // Plain vLLM arguments still work in this mode.
    const plain = await r.client.createPod(podRequest());
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    assert.equal(await health(r, plain.id), 200);
  });

  it('GET /v2/pods/{id}/logs streams spec-shaped SSE events with source, tail and since', async () => {
    const r = await start({ behaviour: { argsMode: 'plain' } });
    const spec = loadRunPodSpec();
    const pod = await r.client.createPod(
      podRequest({ args: '{"entrypoint":["bash","-c"],"cmd":["sleep 1"]}' }),
    );
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + 500);
    const all = await sse(r, pod.id);
    assert.equal(all.status, 200);
    assert.deepEqual(spec.validateResponse('GET', '/v2/pods/{id}/logs', 200, all.type, 'stream'), []);
    assert.ok(all.events.some((e) => e.data.source === 'system' && e.data.line === 'start container'));
    assert.ok(all.events.every((e) => e.id.startsWith(e.data.ts) && /^\d{4}-\d\d-\d\dT/.test(e.data.ts)));
    const container = await sse(r, pod.id, '?source=container');
    assert.ok(container.events.length >= 2 && container.events.every((e) => e.data.source === 'container'));
    assert.match(container.events.at(-1)?.data.line ?? '', /^vllm serve: error: unrecognized arguments: /);
    const tail = await sse(r, pod.id, '?tail=1');
    assert.equal(tail.events.length, 1);
    const none = await sse(r, pod.id, `?since=${new Date(r.clock.now() + 60_000).toISOString()}`);
    assert.equal(none.events.length, 0);
    const bad = await fetch(`${r.emulator.apiUrl}/v2/pods/${pod.id}/logs?tail=9999`, {
      headers: { authorization: `Bearer ${r.emulator.apiKey}` },
    });
    assert.equal(bad.status, 422);
    assert.deepEqual(
      spec.validateResponse(
        'GET',
        '/v2/pods/{id}/logs',
        422,
        bad.headers.get('content-type'),
        await bad.json(),
      ),
      [],
    );
    const missing = await fetch(`${r.emulator.apiUrl}/v2/pods/nope/logs`, {
      headers: { authorization: `Bearer ${r.emulator.apiKey}` },
    });
    assert.equal(missing.status, 404);
  });

  it('the pod-scoped key in the pod env reads and stops its own pod only (403 elsewhere, 403 on stop when switched off)', async () => {
    const r = await start();
    const pod = await r.client.createPod(podRequest());
    const other = await r.client.createPod(podRequest());
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs);
    const env = r.emulator.pods.containerEnv(pod.id);
    assert.equal(env.RUNPOD_POD_ID, pod.id);
    assert.ok((env.RUNPOD_API_KEY ?? '').length > 20 && env.RUNPOD_API_KEY !== r.emulator.apiKey);
    assert.equal((await r.client.getPod(pod.id)).env.RUNPOD_API_KEY, undefined, 'the API does not show it');
    const scoped = r.clientWith({ apiKey: env.RUNPOD_API_KEY ?? '' });
    assert.equal((await scoped.getPod(pod.id)).id, pod.id);
    const denied = (await rejection(scoped.getPod(other.id))) as { code: string };
    assert.equal(denied.code, 'RUNPOD_FORBIDDEN');
    assert.equal(((await rejection(scoped.listPods())) as { code: string }).code, 'RUNPOD_FORBIDDEN');
    r.emulator.faults.set({ podKeyCanStop: false });
    assert.equal(
      ((await rejection(scoped.podAction(pod.id, 'stop'))) as { code: string }).code,
      'RUNPOD_FORBIDDEN',
    );
    r.emulator.faults.set({ podKeyCanStop: true });
    assert.equal((await scoped.podAction(pod.id, 'stop'))?.status, 'EXITED');
  });

  it('CPU pods: the cpu catalog and a CPU pod are spec-valid, billed per vCPU, no gpu field', async () => {
    const r = await start();
    const spec = loadRunPodSpec();
    const auth = { authorization: `Bearer ${r.emulator.apiKey}` };
    const catalog = await fetch(`${r.emulator.apiUrl}/v2/catalog/cpus?include=AVAILABILITY&product=POD`, {
      headers: auth,
    });
    assert.deepEqual(
      spec.validateResponse(
        'GET',
        '/v2/catalog/cpus',
        200,
        catalog.headers.get('content-type'),
        await catalog.json(),
      ),
      [],
    );
    const body = {
      name: 'runpod-llm-probe1',
      image: 'busybox:1.36',
      args: '{"entrypoint":["sh","-c"],"cmd":["echo runpod-llm-probe; sleep infinity"]}',
      cpu: { id: 'cpu3c', vcpuCount: 2 },
    };
    assert.deepEqual(spec.validateSchema('CreatePodRequest', body), []);
    const res = await fetch(`${r.emulator.apiUrl}/v2/pods`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const created = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 201);
    assert.deepEqual(
      spec.validateResponse('POST', '/v2/pods', 201, res.headers.get('content-type'), created),
      [],
    );
    assert.equal(created.gpu, undefined);
    assert.deepEqual(created.cpu, { id: 'cpu3c', vcpuCount: 2, memory: 4 });
    assert.equal(created.cost, 0.06);
    r.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + 60_000);
    const running = await r.client.getPod(created.id as string);
    assert.equal(running.status, 'RUNNING');
    assert.equal(running.runtime?.uptime, 60, 'a script ending in sleep infinity keeps running');
    assert.ok(
      r.emulator.pods.logs(running.id).some((l) => l.source === 'container' && l.line === 'runpod-llm-probe'),
    );
    const bad = await fetch(`${r.emulator.apiUrl}/v2/pods`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, cpu: { id: 'cpu3c', vcpuCount: 3 } }),
    });
    assert.equal(bad.status, 400);
  });

  it('foreign pods appear in the list with status and action values the spec does not list; acting on them is recorded', async () => {
    const r = await start({ foreignPods: 3 });
    const res = await fetch(`${r.emulator.apiUrl}/v2/pods`, {
      headers: { authorization: `Bearer ${r.emulator.apiKey}` },
    });
    const { pods } = (await res.json()) as { pods: Array<Record<string, unknown>> };
    assert.equal(pods.length, 3);
    assert.ok(
      pods.some((p) => p.status === 'PAUSED') &&
        pods.some((p) => (p.actions as string[]).includes('migrate')),
    );
    assert.ok(
      pods.some((p) => p.env === undefined),
      'one lacks fields the spec calls required',
    );
    assert.notDeepEqual(
      loadRunPodSpec().validateResponse('GET', '/v2/pods', 200, res.headers.get('content-type'), { pods }),
      [],
    );
    assert.deepEqual(r.emulator.pods.foreignActions(), []);
    await fetch(`${r.emulator.apiUrl}/v2/pods/${String(pods[0]?.id)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${r.emulator.apiKey}` },
    });
    assert.deepEqual(r.emulator.pods.foreignActions(), [{ podId: pods[0]?.id, action: 'DELETE' }]);
  });

  it('a slow create: the pod exists only after the wait, even when the client gave up', async () => {
    const r = await start({ behaviour: { slowCreate: { delayMs: 400, times: 1 } } });
    const impatient = r.clientWith({ timeoutMs: 100, retries: 0 });
    const err = (await rejection(impatient.createPod(podRequest({ name: 'runpod-llm-slowpod1' })))) as {
      code: string;
    };
    assert.equal(err.code, 'RUNPOD_UNAVAILABLE');
    assert.equal(r.emulator.pods.created().length, 0, 'not yet');
    for (let i = 0; i < 100 && r.emulator.pods.created().length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(
      r.emulator.pods.created().map((p) => p.name),
      ['runpod-llm-slowpod1'],
    );
  });

  it('a 429 burst: Retry-After and RateLimit with nothing remaining in the minute window', async () => {
    const r = await start({ behaviour: {} });
    r.emulator.faults.set({ rateLimit: { times: 2, retryAfterS: 9 } });
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${r.emulator.apiUrl}/v2/pods`, {
        headers: { authorization: `Bearer ${r.emulator.apiKey}` },
      });
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '9');
      assert.match(res.headers.get('ratelimit') ?? '', /^"minute";r=0;t=9, "hour";r=\d+;t=\d+/);
    }
    const ok = await fetch(`${r.emulator.apiUrl}/v2/pods`, {
      headers: { authorization: `Bearer ${r.emulator.apiKey}` },
    });
    assert.equal(ok.status, 200);
  });
});
