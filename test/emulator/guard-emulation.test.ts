import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import { guardedPodStart, unguardedPodStart } from '../../src/guard/recipe.js';
import { createRunPodClient } from '../../src/runpod/client.js';
import { ManualClock } from '../../src/shared/clock.js';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import { GATEWAY_KEY, startTestGateway } from '../helpers/gateway.js';

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

  it('a guarded pod takes a query string only as the guard does (QUERIES: a Responses retrieve)', async () => {
    const url = await pod(guardedPodStart(INPUT));
    const auth = { authorization: `Bearer ${KEY}` };
    const created = await fetch(`${url}/v1/responses`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'served', input: 'hi' }),
    });
    const { id } = (await created.json()) as { id: string };
    for (const query of ['', '?stream=false', '?starting_after=3&stream=false']) {
      const res = await fetch(`${url}/v1/responses/${id}${query}`, { headers: auth });
      assert.equal(res.status, 200, query);
      assert.equal(((await res.json()) as { id: string }).id, id);
    }
    for (const query of ['?stream=1', '?stream=true&stream=true', '?include=x', '?starting_after=%31']) {
      const res = await fetch(`${url}/v1/responses/${id}${query}`, { headers: auth });
      assert.equal(res.status, 404, query);
      assert.deepEqual(await res.json(), { error: 'Not Found' });
    }
    const cancel = await fetch(`${url}/v1/responses/${id}/cancel?stream=true`, {
      method: 'POST',
      headers: auth,
    });
    assert.equal(cancel.status, 404);
    await cancel.arrayBuffer();
    const noKey = await fetch(`${url}/v1/responses/${id}?stream=false`);
    assert.equal(noKey.status, 401);
    await noKey.arrayBuffer();
  });

  it("the gateway forwards a Responses retrieve's query through the guarded pod (openai SDK: resume a stream)", async () => {
    const url = await pod(guardedPodStart(INPUT));
    const gw = await startTestGateway({ pod: false, routes: staticRouteSource(`${url}/v1`, KEY, 'served') });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: GATEWAY_KEY, maxRetries: 0 });
      const created = await client.responses.create({
        model: 'served',
        input: 'resume me',
        background: true,
        stream: true,
      });
      const first: OpenAI.Responses.ResponseStreamEvent[] = [];
      for await (const event of created) first.push(event);
      assert.equal(first.at(-1)?.type, 'response.completed');
      const id = first[0]?.type === 'response.created' ? first[0].response.id : '';
      assert.match(id, /^resp_/);

      const resumed = await client.responses.retrieve(id, { stream: true, starting_after: 3 });
      const rest: OpenAI.Responses.ResponseStreamEvent[] = [];
      for await (const event of resumed) rest.push(event);
      assert.deepEqual(
        rest.map((e) => e.sequence_number),
        first.slice(4).map((e) => e.sequence_number),
        'the events after sequence number 3, as the pod kept them',
      );
      assert.equal(rest.at(-1)?.type, 'response.completed');

      const whole = await client.responses.retrieve(id, { stream: false });
      assert.equal(whole.id, id);
      assert.equal(whole.status, 'completed');

      // Only the parameters the guard lets through go upstream: an extra one is dropped by the
      // gateway (the guard would refuse the whole target), a malformed value likewise.
      const extra = await gw.api(
        `/v1/responses/${id}?stream=true&starting_after=14&include=x&stream_options=y`,
      );
      assert.equal(extra.status, 200);
      assert.match(extra.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal((await extra.text()).match(/^event: /gm)?.length, 1, 'only the event after 14');
      const odd = await gw.api(`/v1/responses/${id}?stream=TRUE`);
      assert.equal(odd.status, 200);
      assert.equal(((await odd.json()) as { id: string }).id, id, 'stream=TRUE dropped: the stored response');
    } finally {
      await gw.close();
    }
  });

  it("an unguarded pod leaves vLLM's open routes open, as real vLLM does", async () => {
    const url = await pod(unguardedPodStart(INPUT));
    assert.equal((await fetch(`${url}/invocations`, { method: 'POST', body: '{"prompt":"x"}' })).status, 200);
  });
});
