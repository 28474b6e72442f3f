import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { staticRouteSource, streamsNonStreaming } from '../../src/gateway/upstream/route-source.js';
import { chatBody, MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** A gateway whose route travels streamed, in front of a real stand-in. */
async function travelling(config: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
  const { startVllmStandin } = await import('../../src/emulator/vllm-standin.js');
  const pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY });
  const gw = await startTestGateway({
    pod: false,
    routes: staticRouteSource(`${pod.url}/v1`, POD_KEY, MODEL, true),
    ...config,
  });
  const closeGateway = gw.close.bind(gw);
  return Object.assign(gw, {
    pod,
    close: async () => {
      await closeGateway();
      await pod.close();
    },
  });
}

function direct(gw: TestGateway, path: string, body: object): Promise<Record<string, unknown>> {
  return fetch(`${gw.pod?.url}/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${POD_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).then((r) => r.json() as Promise<Record<string, unknown>>);
}

/** A raw "pod" that answers every request with the given SSE text (for what the stand-in never sends). */
async function rawSsePod(text: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
}

const chunk = (choices: object[], extra: object = {}): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-raw', object: 'chat.completion.chunk', created: 1_800_000_000, model: MODEL, choices, ...extra })}\n\n`;

describe('stream assembly details', () => {
  const open: Array<{ close(): Promise<void> | void }> = [];
  after(async () => {
    for (const o of open) await o.close();
  });

  it('completions: text, logprobs, finish reason and usage equal the pod’s non-streamed answer', async () => {
    const gw = await travelling();
    open.push(gw);
    const request = {
      model: MODEL,
      prompt: 'def parse(text):',
      suffix: 'return tree',
      logprobs: 2,
      max_tokens: 5,
      temperature: 0,
    };
    const res = await gw.api('/v1/completions', { method: 'POST', json: request });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const got = (await res.json()) as Record<string, unknown> & { choices: Array<Record<string, unknown>> };
    const want = (await direct(gw, '/completions', request)) as typeof got;
    assert.equal(got.object, 'text_completion');
    assert.equal(got.model, want.model);
    assert.deepEqual(got.usage, want.usage);
    const { prompt_logprobs: _onlyNonStreamed, ...wantChoice } = want.choices[0] as Record<string, unknown>;
    assert.deepEqual(got.choices[0], wantChoice);
    assert.equal((got.choices[0] as { finish_reason: string }).finish_reason, 'length');
    const sent = JSON.parse(gw.pod?.requests.at(-2)?.body ?? '{}') as Record<string, unknown>;
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.stream_options, { include_usage: true });
    // The access line says so, with the tokens read from the assembled answer.
    const access = gw.logs.lines().find((l) => l.msg === 'request' && l.path === '/v1/completions');
    assert.equal(access?.assembled, true);
    assert.equal(access?.tokensOut, 5);
  });

  it('a chat without tools or logprobs: the same message and usage as non-streamed', async () => {
    const gw = await travelling();
    open.push(gw);
    const request = chatBody('tell me about streams', {
      temperature: 0,
      stream_options: { include_usage: false },
    });
    const got = (await (await gw.api('/v1/chat/completions', { method: 'POST', json: request })).json()) as {
      choices: Array<{ message: Record<string, unknown>; logprobs: unknown; finish_reason: string }>;
      usage: unknown;
    };
    const { stream_options: _rejectedByVllmWithoutStream, ...plain } = request;
    const want = (await direct(gw, '/chat/completions', plain)) as typeof got;
    const {
      tool_calls: emptyList,
      reasoning_content: unset,
      ...wantMessage
    } = want.choices[0]?.message ?? {};
    assert.deepEqual(emptyList, []);
    assert.equal(unset, null);
    assert.deepEqual(got.choices[0]?.message, wantMessage);
    assert.equal(got.choices[0]?.logprobs, null);
    assert.equal(got.choices[0]?.finish_reason, want.choices[0]?.finish_reason);
    assert.deepEqual(got.usage, want.usage);
    // The client's own stream_options are replaced: usage is always asked for.
    assert.deepEqual(JSON.parse(gw.pod?.requests.at(-2)?.body ?? '{}').stream_options, {
      include_usage: true,
    });
  });

  it('an error vLLM answers before the first chunk keeps its status and body', async () => {
    const gw = await travelling();
    open.push(gw);
    const plainGw = await startTestGateway({ pod: { model: MODEL } });
    open.push(plainGw);
    const vllmError = JSON.stringify({
      object: 'error',
      message: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
      type: 'BadRequestError',
      param: null,
      code: 400,
    });
    gw.pod?.setFault({ kind: 'status', status: 400, body: vllmError });
    plainGw.pod?.setFault({ kind: 'status', status: 400, body: vllmError });
    const a = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('x') });
    const b = await plainGw.api('/v1/chat/completions', { method: 'POST', json: chatBody('x') });
    assert.equal(a.status, 400);
    assert.equal(a.status, b.status);
    assert.equal(a.headers.get('x-should-retry'), 'false');
    assert.deepEqual(await a.json(), await b.json());
  });

  it('the cache stores the assembled JSON answer and replays it as JSON', async () => {
    const gw = await travelling({ config: { cache_mode: 'all' } });
    open.push(gw);
    const body = chatBody('cache me', { temperature: 0 });
    const first = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    const firstText = await first.text();
    const second = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(first.headers.get('x-cache'), 'MISS');
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.match(second.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await second.text(), firstText);
    assert.equal((JSON.parse(firstText) as { object: string }).object, 'chat.completion');
    assert.equal(gw.pod?.requests.length, 1);
  });

  it('streamed requests and requests vLLM cannot stream (beam search, best_of > 1) go as asked', async () => {
    const gw = await travelling();
    open.push(gw);
    const streamed = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: chatBody('s', { stream: true }),
    });
    assert.match(streamed.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(await streamed.text(), /data: \[DONE\]/);
    assert.equal(JSON.parse(gw.pod?.requests.at(-1)?.body ?? '{}').stream_options, undefined);
    for (const extra of [{ best_of: 2 }, { use_beam_search: true }]) {
      const res = await gw.api('/v1/completions', {
        method: 'POST',
        json: { model: MODEL, prompt: 'p', ...extra },
      });
      assert.equal(res.status, 200);
      assert.equal(
        JSON.parse(gw.pod?.requests.at(-1)?.body ?? '{}').stream,
        undefined,
        JSON.stringify(extra),
      );
    }
  });

  it('a client that leaves while the answer is being assembled cancels the generation upstream', async () => {
    const gw = await travelling();
    open.push(gw);
    gw.pod?.setFault({ kind: 'generation_time', ms: 4_000 });
    const controller = new AbortController();
    const pending = gw
      .api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody('leave early'),
        signal: controller.signal,
      })
      .catch((e: unknown) => e);
    const deadline = Date.now() + 10_000;
    while ((gw.pod?.stats.inFlight ?? 0) === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await pending;
    while ((gw.pod?.stats.aborted ?? 0) === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(gw.pod?.stats.aborted, 1);
    assert.equal(gw.pod?.stats.completed, 0);
  });

  it('joins vLLM reasoning deltas, which openai’s accumulator would overwrite', async () => {
    const text = [
      chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { reasoning_content: 'First, ' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { reasoning_content: 'think.' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: 'Answer.' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop', stop_reason: null }]),
      chunk([], {
        usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
        system_fingerprint: 'fp_raw',
      }),
      'data: [DONE]\n\n',
    ].join('');
    const pod = await rawSsePod(text);
    open.push({ close: () => void pod.server.close() });
    const gw = await startTestGateway({
      pod: false,
      routes: staticRouteSource(pod.url, POD_KEY, MODEL, true),
    });
    open.push(gw);
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('think') });
    assert.equal(res.status, 200);
    const got = (await res.json()) as {
      id: string;
      created: number;
      system_fingerprint: string;
      usage: unknown;
      choices: Array<{ message: Record<string, unknown> }>;
    };
    assert.equal(got.choices[0]?.message.reasoning_content, 'First, think.');
    assert.equal(got.choices[0]?.message.content, 'Answer.');
    assert.equal(got.id, 'chatcmpl-raw');
    assert.equal(got.created, 1_800_000_000);
    assert.equal(got.system_fingerprint, 'fp_raw');
    assert.deepEqual(got.usage, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
  });

  it('an error event inside the stream becomes that error with its status; a stream cut before [DONE] a 502', async () => {
    const started = chunk([
      { index: 0, delta: { role: 'assistant', content: 'partial' }, logprobs: null, finish_reason: null },
    ]);
    const failing = await rawSsePod(
      `${started}data: ${JSON.stringify({ error: { object: 'error', message: 'engine failed', type: 'InternalServerError', param: null, code: 500 } })}\n\ndata: [DONE]\n\n`,
    );
    const cut = await rawSsePod(started);
    open.push({ close: () => void failing.server.close() }, { close: () => void cut.server.close() });
    const a = await startTestGateway({
      pod: false,
      routes: staticRouteSource(failing.url, POD_KEY, MODEL, true),
    });
    const b = await startTestGateway({
      pod: false,
      routes: staticRouteSource(cut.url, POD_KEY, MODEL, true),
    });
    open.push(a, b);
    const ra = await a.api('/v1/chat/completions', { method: 'POST', json: chatBody('x') });
    assert.equal(ra.status, 500);
    assert.deepEqual(await ra.json(), {
      error: { message: 'engine failed', type: 'InternalServerError', param: null, code: null },
    });
    const rb = await b.api('/v1/chat/completions', { method: 'POST', json: chatBody('x') });
    assert.equal(rb.status, 502);
    assert.equal(((await rb.json()) as { error: { code: string } }).error.code, 'upstream_bad_response');
    const garbled = await rawSsePod(`${started}data: {not json\n\ndata: [DONE]\n\n`);
    open.push({ close: () => void garbled.server.close() });
    const c = await startTestGateway({
      pod: false,
      routes: staticRouteSource(garbled.url, POD_KEY, MODEL, true),
    });
    open.push(c);
    const rc = await c.api('/v1/chat/completions', { method: 'POST', json: chatBody('x') });
    assert.equal(rc.status, 502);
    assert.match(
      ((await rc.json()) as { error: { message: string } }).error.message,
      /could not be assembled/,
    );
  });
});

describe('upstream.stream_non_streaming', () => {
  it('auto: on for the manager’s pod routes and *.proxy.runpod.net, off for other URLs; always/never override', () => {
    assert.equal(streamsNonStreaming('auto', 'https://abc123-8000.proxy.runpod.net/v1', false), true);
    assert.equal(streamsNonStreaming('auto', 'http://127.0.0.1:4000/proxy/abc-8000/v1', true), true);
    assert.equal(streamsNonStreaming('auto', 'http://127.0.0.1:8001/v1', false), false);
    assert.equal(streamsNonStreaming('auto', 'https://proxy.runpod.net.evil.example/v1', false), false);
    assert.equal(streamsNonStreaming('always', 'http://127.0.0.1:8001/v1', false), true);
    assert.equal(streamsNonStreaming('never', 'https://abc123-8000.proxy.runpod.net/v1', true), false);
  });

  it('is read from UPSTREAM_STREAM_NON_STREAMING, and a wrong value is reported with the valid ones', () => {
    const ok = loadConfig({ env: { UPSTREAM_STREAM_NON_STREAMING: 'never' }, cwd: '/nonexistent' });
    assert.equal(ok.errors.length, 0);
    assert.equal(ok.config?.upstream.stream_non_streaming, 'never');
    const bad = loadConfig({ env: { UPSTREAM_STREAM_NON_STREAMING: 'sometimes' }, cwd: '/nonexistent' });
    const error = bad.errors.find((e) => e.path === 'upstream.stream_non_streaming');
    assert.ok(error, JSON.stringify(bad.errors));
    assert.match(`${error.message}`, /auto.*always.*never/);
    assert.match(`${error.source}`, /UPSTREAM_STREAM_NON_STREAMING/);
  });
});
