import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { defaultConfig } from '../../src/config/schema.js';
import { buildApp, type GatewayApp } from '../../src/gateway/app.js';
import { stateRouteSource } from '../../src/gateway/upstream/state-route-source.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openState, type StateDb } from '../../src/state/db.js';
import { upsertRoute } from '../../src/state/routes.js';
import { podRequest, POD_KEY, startRig, type Rig } from '../emulator/setup.js';

const GW_KEY = 'gw_stream_assembly_key_0123456789';
const SERVED = 'qwen-coder';
const TOOLS = [
  {
    type: 'function' as const,
    function: {
      name: 'search_code',
      description: 'find code',
      parameters: { type: 'object', properties: { text: { type: 'string' } } },
    },
  },
  {
    type: 'function' as const,
    function: { name: 'open_file', parameters: { type: 'object', properties: { text: { type: 'string' } } } },
  },
];

/**
 * The "done when": the gateway, with routes from the manager's state, in front of the
 * emulator's pod proxy with a 5 s Cloudflare limit; the pod's answer takes 8 s.
 */
describe('non-streamed requests travel streamed (through the emulator pod proxy, 5 s limit)', () => {
  let rig: Rig;
  let home: string;
  let state: StateDb;
  let podUrl: string;
  let podId: string;
  const gateways: GatewayApp[] = [];

  async function gateway(mode: 'auto' | 'never'): Promise<string> {
    const routes = stateRouteSource({
      home,
      logger: silentLogger(),
      pollMs: 60_000,
      streamNonStreaming: mode,
    });
    const built = await buildApp({
      config: defaultConfig({ proxy_port: 0, cache_mode: 'off' }),
      logger: silentLogger(),
      routes,
      keys: [GW_KEY],
      probe: false,
    });
    await built.app.listen({ host: '127.0.0.1', port: 0 });
    gateways.push(built);
    return `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}/v1`;
  }

  before(async () => {
    rig = await startRig({ proxyIdleLimitMs: 5_000, standin: { chunks: 16 } });
    podId = (await rig.client.createPod(podRequest())).id;
    rig.clock.advance(10_000);
    await rig.client.getPod(podId);
    podUrl = `${rig.emulator.pods.url(podId)}/v1`;
    home = mkdtempSync(join(tmpdir(), 'gw-assembly-'));
    state = openState({ home });
    upsertRoute(state, {
      routeId: podId,
      podId,
      baseUrl: podUrl,
      apiKey: POD_KEY,
      model: SERVED,
      ready: true,
    });
  });
  after(async () => {
    for (const g of gateways) await g.app.close();
    state.close();
    await rig.emulator.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('returns the 8 s answer whole: content, tool calls, finish reason, usage and logprobs equal to the pod’s own non-streamed answer', async () => {
    const standin = rig.emulator.pods.standin(podId);
    assert.ok(standin);
    standin.setFault({ kind: 'generation_time', ms: 8_000 });
    standin.setToolTurns('generated');
    const before = standin.requests.length;
    const request = {
      model: SERVED,
      messages: [{ role: 'user' as const, content: 'find the parser code please' }],
      tools: TOOLS,
      logprobs: true,
      top_logprobs: 2,
      temperature: 0,
    };
    const client = new OpenAI({
      baseURL: await gateway('auto'),
      apiKey: GW_KEY,
      maxRetries: 0,
      timeout: 60_000,
    });
    // Both take 8 s on the pod: asked at the same time.
    const [viaGateway, direct] = await Promise.all([
      client.chat.completions.create(request),
      directFromStandin(rig, podId, request),
    ]);
    // The pod saw one request from the gateway, and it asked for a stream with usage.
    const fromGateway = standin.requests.slice(before).filter((r) => r.headers['x-request-id'] !== undefined);
    assert.equal(fromGateway.length, 1);
    const sent = JSON.parse(fromGateway[0]?.body ?? '{}') as Record<string, unknown>;
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.stream_options, { include_usage: true });

    const got = viaGateway.choices[0];
    const want = direct.choices[0];
    assert.ok(got && want);
    assert.equal(viaGateway.object, 'chat.completion');
    assert.equal(viaGateway.model, direct.model);
    assert.equal(got.index, want.index);
    assert.equal(got.finish_reason, 'tool_calls');
    assert.equal(got.finish_reason, want.finish_reason);
    assert.equal(got.message.role, want.message.role);
    assert.equal(got.message.content, want.message.content);
    assert.match(got.message.content ?? '', /^You said: find the parser code/);
    assert.equal(got.message.refusal, want.message.refusal);
    // Tool calls: same functions and arguments (joined per index from the pieces); the ids are
    // fresh per generation on vLLM too, so they can only be checked for shape.
    assert.equal(got.message.tool_calls?.length, 2);
    assert.deepEqual(
      got.message.tool_calls?.map((c) =>
        c.type === 'function' ? [c.type, c.function.name, c.function.arguments] : [c.type],
      ),
      want.message.tool_calls?.map((c) =>
        c.type === 'function' ? [c.type, c.function.name, c.function.arguments] : [c.type],
      ),
    );
    for (const call of got.message.tool_calls ?? []) assert.match(call.id, /^chatcmpl-tool-[0-9a-f]+$/);
    assert.deepEqual(got.logprobs, want.logprobs);
    assert.equal(got.logprobs?.content?.length, 16);
    assert.deepEqual(viaGateway.usage, direct.usage);
    // vLLM's extra choice field survives the assembly.
    assert.equal((got as unknown as { stop_reason: unknown }).stop_reason, null);
    // Per-generation values: a new id and creation time for every answer, on vLLM as here.
    assert.match(viaGateway.id, /^chatcmpl-[0-9a-f]+$/);
    assert.ok(Math.abs(viaGateway.created - direct.created) < 120);
  });

  it('without the feature the 8 s answer dies at the proxy: one upstream request, a 504 upstream_proxy_timeout the SDK does not retry', async () => {
    const standin = rig.emulator.pods.standin(podId);
    assert.ok(standin);
    standin.setFault({ kind: 'generation_time', ms: 8_000 });
    const before = standin.requests.length;
    let calls = 0;
    const client = new OpenAI({
      baseURL: await gateway('never'),
      apiKey: GW_KEY,
      maxRetries: 2,
      timeout: 60_000,
      fetch: (input, init) => {
        calls++;
        return fetch(input, init);
      },
    });
    const err = await client.chat.completions
      .create({ model: SERVED, messages: [{ role: 'user', content: 'a long answer' }] })
      .then(
        () => assert.fail('expected the proxy timeout'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 504);
    assert.equal(err.code, 'upstream_proxy_timeout');
    assert.equal(err.headers?.get('x-should-retry'), 'false');
    assert.equal(calls, 1, 'the SDK made one request, not three');
    assert.equal(standin.requests.slice(before).length, 1, 'the pod generated once');
    assert.equal(
      JSON.parse(standin.requests.at(-1)?.body ?? '{}').stream,
      undefined,
      'sent as the client asked',
    );
  });
});

/** The stand-in's own non-streamed answer to the same request (no proxy in between). */
async function directFromStandin(rig: Rig, podId: string, request: object): Promise<OpenAI.ChatCompletion> {
  const standin = rig.emulator.pods.standin(podId);
  assert.ok(standin);
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => standin.handler(req, res, req.url ?? '/'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${POD_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    assert.equal(res.status, 200);
    return (await res.json()) as OpenAI.ChatCompletion;
  } finally {
    server.close();
  }
}
