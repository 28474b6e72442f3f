import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { parsePodList } from '../../src/runpod/schemas.js';
import { rateLimitWaitMs } from '../../src/runpod/http.js';
import { captureLogs } from '../helpers/log-capture.js';
import { podRequest, rejection, SCHEDULE, startRig, type Rig } from '../emulator/setup.js';

/**
 * A client that tolerates the live API — odd pods in the list, slow creates,
 * quota headers — and the logs endpoint read with bounds.
 */
describe('RunPod client tolerance', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.emulator.close();
    rig = undefined;
  });

  it('a list with foreign pods (unknown status and actions, missing fields, runtime {}) keeps ours readable; odd ones are skipped with one warning', async () => {
    rig = await startRig({ foreignPods: 3 });
    const ours = await rig.client.createPod(podRequest());
    const logs = captureLogs();
    const client = rig.clientWith({ logger: logs.logger });
    const first = await client.listPods();
    const again = await client.listPods();
    assert.ok(first.some((p) => p.id === ours.id));
    // The RUNNING foreign pod with an unknown action and runtime {} is readable; the others are not.
    const readable = first.filter((p) => p.id !== ours.id);
    assert.equal(readable.length, 1);
    assert.deepEqual(readable[0]?.actions, ['stop', 'terminate'], 'unknown action values dropped');
    assert.equal(first.skipped?.length, 2);
    assert.ok(first.skipped?.some((s) => /status/.test(s.reason)));
    assert.equal(again.skipped?.length, 2);
    const warnings = logs.lines().filter((l) => /cannot read; skipped/.test(String(l.msg)));
    assert.equal(warnings.length, 1, 'one warning, not one per list');
  });

  it('parsePodList: missing optional fields read as empty, a missing cost or id is a skip (never a throw)', () => {
    const { pods, skipped } = parsePodList([
      { id: 'a', name: 'runpod-llm-a', status: 'RUNNING', cost: 0.3, runtime: {}, extra: { deep: true } },
      { id: 'b', name: 'x', status: 'RUNNING' },
      'not an object',
      { name: 'no-id', status: 'EXITED', cost: 0 },
    ]);
    assert.equal(pods.length, 1);
    assert.deepEqual(
      {
        args: pods[0]?.args,
        env: pods[0]?.env,
        ports: pods[0]?.ports,
        actions: pods[0]?.actions,
        startedAt: pods[0]?.startedAt,
      },
      { args: '', env: {}, ports: [], actions: [], startedAt: null },
    );
    assert.equal(skipped.length, 3);
    assert.equal(skipped[0]?.id, 'b');
  });

  it('a create slower than the client timeout: listed by name over the window, adopted, never a second pod', async () => {
    rig = await startRig({ behaviour: { slowCreate: { delayMs: 600, times: 1 } } });
    const r = rig;
    // Real waits (scaled down): the pod appears on RunPod's side while the client polls.
    const client = r.clientWith({
      timeoutMs: 150,
      createConfirmWindowMs: 30_000,
      createConfirmPollMs: 3_000,
      sleep: async (ms) => {
        r.clock.advance(ms);
        await new Promise((resolve) => setTimeout(resolve, ms / 30));
      },
    });
    const req = podRequest({ name: 'runpod-llm-slow0001' });
    const outcome = await client.createPodDetailed(req);
    assert.equal(outcome.adopted, true);
    assert.equal(outcome.attempts, 1);
    assert.equal(r.emulator.pods.created().filter((p) => p.name === req.name).length, 1);
  });

  it('no pod within the window: exactly one more create, and the list was watched for at least 30 s of clock time first', async () => {
    rig = await startRig();
    const r = rig;
    r.emulator.faults.set({ createFailure: { status: 503, createPod: false, times: 1 } });
    const lists: number[] = [];
    const client = r.clientWith({
      createConfirmWindowMs: 10_000, // raised to the 30 s minimum
      createConfirmPollMs: 5_000,
      sleep: async (ms) => {
        r.clock.advance(ms);
      },
      fetch: async (input, init) => {
        if (
          (init?.method ?? 'GET') === 'GET' &&
          new URL(input instanceof Request ? input.url : input).pathname === '/v2/pods'
        )
          lists.push(r.clock.now());
        return globalThis.fetch(input, init);
      },
    });
    const start = r.clock.now();
    const outcome = await client.createPodDetailed(podRequest());
    assert.equal(outcome.attempts, 2);
    assert.ok((lists.at(-1) ?? 0) - start >= 30_000, `last list after ${(lists.at(-1) ?? 0) - start} ms`);
    assert.equal(r.emulator.pods.created().length, 1);
  });

  it('RateLimit r=0 makes the next call wait for the window instead of earning a 429; a day window fails at once', async () => {
    assert.equal(rateLimitWaitMs('"minute";r=0;t=12, "hour";r=2950;t=3000'), 12_000);
    assert.equal(rateLimitWaitMs('"minute";r=5;t=12'), undefined);
    assert.equal(rateLimitWaitMs(null), undefined);
    rig = await startRig();
    const r = rig;
    let answer = '"minute";r=0;t=7, "hour";r=10;t=100';
    const client = r.clientWith({
      fetch: async (input, init) => {
        const res = await globalThis.fetch(input, init);
        const headers = new Headers(res.headers);
        headers.set('ratelimit', answer);
        return new Response(await res.text(), { status: res.status, headers });
      },
    });
    await client.listPods();
    assert.deepEqual(r.sleeps, []);
    await client.listPods();
    assert.deepEqual(r.sleeps, [7_000]);
    answer = '"day";r=0;t=40000';
    await client.listPods();
    const err = (await rejection(client.listPods())) as { code: string };
    assert.equal(err.code, 'RUNPOD_RATE_LIMITED');
  });

  it('getPodLogs reads the backfill within its limits: the argparse error of a pod whose JSON start command was not honoured', async () => {
    rig = await startRig({ behaviour: { argsMode: 'plain' } });
    const pod = await rig.client.createPod(
      podRequest({ args: '{"entrypoint":["bash","-c"],"cmd":["vllm serve m --port 8000"]}' }),
    );
    rig.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs);
    const started = Date.now();
    const lines = await rig.client.getPodLogs?.(pod.id, { tail: 50, timeLimitMs: 3_000, idleMs: 300 });
    assert.ok(Date.now() - started < 3_000 + 1_000, 'bounded by the time limit');
    assert.ok(
      lines?.some(
        (l) => l.source === 'container' && l.line.startsWith('vllm serve: error: unrecognized arguments:'),
      ),
      JSON.stringify(lines),
    );
    const system = await rig.client.getPodLogs?.(pod.id, { source: 'system', tail: 1, idleMs: 300 });
    assert.deepEqual(
      system?.map((l) => l.line),
      ['start container'],
    );
    const err = (await rejection(
      rig.client.getPodLogs?.('nosuchpod', { idleMs: 300 }) ?? Promise.resolve(),
    )) as { code: string };
    assert.equal(err.code, 'RUNPOD_NOT_FOUND');
  });
});
