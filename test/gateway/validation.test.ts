import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GATEWAY_KEY, MODEL, chatBody, startTestGateway, type TestGateway } from '../helpers/gateway.js';

type Envelope = { error: { message: string; type: string; param: string | null; code: string } };

describe('request validation', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      config: { rate_limit_requests: 10_000, max_n: 4, max_tokens: 4096, max_content_length: 50_000 },
    });
  });
  after(() => gw.close());

  const post = (json: unknown, path = '/v1/chat/completions') => gw.api(path, { method: 'POST', json });
  async function expectError(
    res: Response,
    status: number,
    code: string,
    param?: string | null,
  ): Promise<Envelope> {
    const body = (await res.json()) as Envelope;
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(body.error.code, code);
    assert.equal(typeof body.error.message, 'string');
    if (param !== undefined) assert.equal(body.error.param, param);
    return body;
  }

  it('accepts every valid shape and forwards the body byte for byte, unknown fields included', async () => {
    const body = {
      model: MODEL,
      messages: [
        { role: 'developer', content: 'rules' },
        { role: 'system', content: [{ type: 'text', text: 'sys' }] },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: '42' },
      ],
      tools: [
        {
          type: 'function',
          function: { name: 'f', description: 'd', parameters: { type: 'object', properties: {} } },
        },
      ],
      tool_choice: 'auto',
      response_format: { type: 'json_object' },
      stream_options: null,
      seed: 7,
      temperature: 0,
      top_k: 20,
      guided_json: { type: 'object' },
      max_completion_tokens: 16,
    };
    const raw = `${JSON.stringify(body, null, 1)}\n`;
    const res = await gw.api('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: raw,
    });
    assert.equal(res.status, 200);
    assert.equal(gw.pod!.requests.at(-1)?.body, raw);
  });

  it('names the missing or malformed field', async () => {
    await expectError(
      await post({ messages: [{ role: 'user', content: 'x' }] }),
      400,
      'invalid_request',
      'model',
    );
    await expectError(await post({ model: MODEL }), 400, 'invalid_request', 'messages');
    await expectError(await post({ model: MODEL, messages: [] }), 400, 'invalid_request', 'messages');
    await expectError(
      await post({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }),
      400,
      'invalid_request',
      'messages[0].role',
    );
    await expectError(
      await post({ model: MODEL, messages: [{ role: 'user', content: 5 }] }),
      400,
      'invalid_request',
      'messages[0].content',
    );
    await expectError(
      await post(chatBody('x', { temperature: 'hot' })),
      400,
      'invalid_request',
      'temperature',
    );
    await expectError(await post(chatBody('x', { stream: 'yes' })), 400, 'invalid_request', 'stream');
    await expectError(await post({ model: MODEL }, '/v1/completions'), 400, 'invalid_request', 'prompt');
    await expectError(
      await post({ model: MODEL, input: [] }, '/v1/embeddings'),
      400,
      'invalid_request',
      'input',
    );
    await expectError(await post([1, 2]), 400, 'invalid_request');
  });

  it('bounds n and max_tokens by configuration', async () => {
    await expectError(await post(chatBody('x', { n: 5 })), 400, 'invalid_request', 'n');
    await expectError(await post(chatBody('x', { max_tokens: 4097 })), 400, 'invalid_request', 'max_tokens');
    assert.equal((await post(chatBody('x', { n: 4, max_tokens: 4096 }))).status, 200);
  });

  it('refuses bad JSON, empty bodies, invalid UTF-8 and other media types', async () => {
    await expectError(
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"model":',
      }),
      400,
      'invalid_json',
    );
    await expectError(
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '',
      }),
      400,
      'invalid_json',
    );
    const badUtf8 = Buffer.concat([
      Buffer.from('{"model":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('","messages":[{"role":"user","content":"x"}]}'),
    ]);
    await expectError(
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: badUtf8,
      }),
      400,
      'invalid_json',
    );
    await expectError(
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify(chatBody()),
      }),
      415,
      'unsupported_media_type',
    );
    await expectError(
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'a=b',
      }),
      415,
      'unsupported_media_type',
    );
  });

  it('refuses prototype poisoning with 400', async () => {
    const proto = '{"model":"m","messages":[{"role":"user","content":"x"}],"__proto__":{"admin":true}}';
    await expectError(
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: proto,
      }),
      400,
      'forbidden_property',
    );
    const ctor =
      '{"model":"m","messages":[{"role":"user","content":"x"}],"constructor":{"prototype":{"admin":true}}}';
    await expectError(
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: ctor,
      }),
      400,
      'forbidden_property',
    );
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });

  it('limits each message content to 50,000 bytes (UTF-8), strings and parts alike', async () => {
    assert.equal((await post(chatBody('a'.repeat(50_000)))).status, 200);
    await expectError(
      await post(chatBody('a'.repeat(50_001))),
      400,
      'content_too_long',
      'messages[0].content',
    );
    await expectError(
      await post(chatBody('é'.repeat(25_001))),
      400,
      'content_too_long',
      'messages[0].content',
    );
    const parts = [
      { type: 'text', text: 'a'.repeat(30_000) },
      { type: 'text', text: 'b'.repeat(30_000) },
    ];
    await expectError(
      await post({ model: MODEL, messages: [{ role: 'user', content: parts }] }),
      400,
      'content_too_long',
      'messages[0].content',
    );
    await expectError(
      await post({ model: MODEL, prompt: 'p', suffix: 's'.repeat(50_001) }, '/v1/completions'),
      400,
      'content_too_long',
      'suffix',
    );
  });

  it('answers a body over 1 MB with 413 (Content-Length)', async () => {
    const res = await post(chatBody('x'.repeat(1_100_000)));
    await expectError(res, 413, 'request_too_large');
    const events = gw.logs.lines().filter((l) => l.event === 'request_too_large');
    assert.ok(events.length >= 1);
  });

  it('answers a chunked body that grows over 1 MB with 413 without reading it all', async () => {
    const port = new URL(gw.url).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
      });
      socket.on('close', () => resolve(data));
      socket.on('error', (err) => (data === '' ? reject(err) : resolve(data)));
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${GATEWAY_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
      );
      const chunk = 'a'.repeat(64 * 1024);
      let sent = 0;
      const pump = (): void => {
        if (sent > 2_000_000 || socket.destroyed) {
          socket.end();
          return;
        }
        sent += chunk.length;
        socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`, (err) =>
          err ? undefined : setImmediate(pump),
        );
      };
      pump();
    });
    assert.match(answer, /^HTTP\/1\.1 413/);
    assert.match(answer, /"code":"request_too_large"/);
  });
});

describe('content policy', () => {
  it('off (default) forwards <script> and javascript: untouched (code prompts need them)', async () => {
    const gw = await startTestGateway();
    try {
      const text = 'fix <script>alert(1)</script> and href="javascript:void(0)"';
      assert.equal(
        (await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody(text) })).status,
        200,
      );
      const forwarded = JSON.parse(gw.pod!.requests.at(-1)?.body ?? '{}') as {
        messages: Array<{ content: string }>;
      };
      assert.equal(forwarded.messages[0]?.content, text);
    } finally {
      await gw.close();
    }
  });

  it('reject answers 400 naming the field', async () => {
    const gw = await startTestGateway({ config: { content_policy: 'reject' } });
    try {
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody('<script>x</script>'),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as Envelope).error.param, 'messages[0].content');
    } finally {
      await gw.close();
    }
  });

  it('strip removes script blocks and javascript: before forwarding', async () => {
    const gw = await startTestGateway({ config: { content_policy: 'strip' } });
    try {
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody('a<script>evil()</script>b javascript:c'),
      });
      assert.equal(res.status, 200);
      const forwarded = JSON.parse(gw.pod!.requests.at(-1)?.body ?? '{}') as {
        messages: Array<{ content: string }>;
      };
      assert.equal(forwarded.messages[0]?.content, 'ab c');
    } finally {
      await gw.close();
    }
  });
});
