import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { GATEWAY_KEY, MODEL, startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('gateway with the official openai SDK', () => {
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    gw = await startTestGateway({ pod: { chunkDelayMs: 1 } });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: GATEWAY_KEY, maxRetries: 0 });
  });
  after(() => gw.close());

  it('lists the served model', async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [MODEL],
    );
  });

  it('does a non-streaming chat and reports usage', async () => {
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'hello world' }],
    });
    assert.equal(res.object, 'chat.completion');
    assert.match(res.choices[0]?.message.content ?? '', /^You said: hello world/);
    assert.equal(res.usage?.completion_tokens, 8);
  });

  it('streams a chat event by event, with the usage chunk and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'stream please' }] },
      ],
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.match(text, /^You said: stream please/);
    assert.equal(chunks, 11); // role chunk + 8 deltas + finish chunk + usage chunk
    assert.equal(usage?.completion_tokens, 8);
  });

  it('passes the SSE framing through byte for byte', async () => {
    const body = { model: MODEL, stream: true, messages: [{ role: 'user', content: 'framing' }] };
    const direct = await fetch(`${gw.pod!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer pod_test_key_9d8c7b6a5f4e3d2c1b0a',
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });
    const proxied = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(proxied.headers.get('content-type'), direct.headers.get('content-type'));
    assert.equal(proxied.headers.get('cache-control'), 'no-cache');
    assert.equal(proxied.headers.get('x-accel-buffering'), 'no');
    const strip = (s: string) =>
      s.replace(/chatcmpl-[0-9a-f]+/g, 'ID').replace(/"created":\d+/g, '"created":0');
    assert.equal(strip(await proxied.text()), strip(await direct.text()));
  });

  it('does fill-in-the-middle completions with suffix, streaming and not', async () => {
    const res = await client.completions.create({
      model: MODEL,
      prompt: 'def add(a, b):',
      suffix: 'return c',
      max_tokens: 5,
    });
    assert.equal(res.object, 'text_completion');
    assert.equal(res.choices[0]?.finish_reason, 'length');
    const stream = await client.completions.create({ model: MODEL, prompt: 'x = ', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.match(text, /^You said: x =/);
  });

  it('creates embeddings', async () => {
    const res = await client.embeddings.create({ model: MODEL, input: ['a', 'b'] });
    assert.equal(res.data.length, 2);
    assert.equal(res.data[0]?.embedding.length, 8);
  });

  it('surfaces upstream errors unchanged (unknown model → vLLM 404)', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.NotFoundError);
        assert.match(err.message, /does not exist/);
        return true;
      },
    );
  });

  it('rejects a wrong gateway key with 401 in the OpenAI envelope', async () => {
    const bad = new OpenAI({ baseURL: gw.baseUrl, apiKey: 'wrong-key-that-is-long-enough', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (err: unknown) => {
      assert.ok(err instanceof OpenAI.AuthenticationError);
      assert.equal((err.error as { code: string }).code, 'invalid_api_key');
      return true;
    });
  });
});

describe("gateway when the pod refuses the gateway's pod key", () => {
  it('answers 502 upstream_auth_failed instead of blaming the caller', async () => {
    const gw = await startTestGateway({ pod: { apiKey: 'a-different-pod-key-000000' } });
    try {
      const res = await gw.api('/v1/models');
      assert.equal(res.status, 502);
      const body = (await res.json()) as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'upstream_auth_failed');
      assert.equal(body.error.type, 'server_error');
    } finally {
      await gw.close();
    }
  });
});
