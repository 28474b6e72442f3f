import assert from 'node:assert/strict';
import { Agent, request as httpGet } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { httpRequest, rawRequest, type RunningGuard, startGuard } from './run-guard.js';

const KEY = 'vk_guard_test_0123456789abcdef';
const MODEL = 'guarded-model';
const AUTH = { authorization: `Bearer ${KEY}` };
const CHAT = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'SECRET-PROMPT-TEXT' }] });
const json = (body: string): Record<string, string> => ({
  'content-type': 'application/json',
  'content-length': String(Buffer.byteLength(body)),
});

describe('guard in front of the vLLM stand-in', () => {
  let pod: VllmStandin;
  let guard: RunningGuard;

  before(async () => {
    pod = await startVllmStandin({ model: MODEL, apiKey: KEY, chunkDelayMs: 100, chunks: 10 });
    guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: KEY });
  });
  after(async () => {
    await guard.close();
    await pod.close();
  });

  /** Runs `send` and asserts the stand-in saw no request meanwhile. */
  async function unseen<T>(send: () => Promise<T>): Promise<T> {
    const before = pod.requests.length;
    const result = await send();
    assert.equal(
      pod.requests.length,
      before,
      `the stand-in received ${JSON.stringify(pod.requests.slice(before).map((r) => r.path))}`,
    );
    return result;
  }

  it('forwards GET /v1/models with the key, and the key and nothing else of the client reaches vLLM', async () => {
    const res = await rawRequest(
      guard.port,
      httpRequest('GET', '/v1/models', { ...AUTH, cookie: 'session=abc', 'x-forwarded-for': '6.6.6.6' }),
    );
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.equal((JSON.parse(res.body) as { data: { id: string }[] }).data[0]?.id, MODEL);
    const seen = pod.requests.at(-1);
    assert.equal(seen?.path, '/v1/models');
    assert.equal(seen?.headers.authorization, `Bearer ${KEY}`);
    assert.equal(seen?.headers.cookie, undefined);
    assert.equal(seen?.headers['x-forwarded-for'], undefined);
  });

  it('forwards chat, completions and embeddings with their bodies', async () => {
    const bodies: [string, string][] = [
      [
        '/v1/chat/completions',
        JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
      ],
      ['/v1/completions', JSON.stringify({ model: MODEL, prompt: 'def f(', max_tokens: 2 })],
      ['/v1/embeddings', JSON.stringify({ model: MODEL, input: 'hello' })],
    ];
    for (const [path, body] of bodies) {
      const res = await rawRequest(guard.port, httpRequest('POST', path, { ...AUTH, ...json(body) }, body));
      assert.equal(res.status, 200, `${path}: ${res.body}`);
      assert.equal(pod.requests.at(-1)?.body, body);
    }
  });

  it('passes vLLM errors through with their status', async () => {
    const body = JSON.stringify({ model: 'other', prompt: 'x' });
    const res = await rawRequest(
      guard.port,
      httpRequest('POST', '/v1/completions', { ...AUTH, ...json(body) }, body),
    );
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.body) as { object: string }).object, 'error');
  });

  it('streams SSE chunk by chunk: the first event arrives long before the stream ends', async () => {
    const body = JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: 'count' }],
      stream: true,
      max_tokens: 10,
    });
    const started = Date.now();
    const arrivals: number[] = [];
    let text = '';
    const res = await fetch(`${guard.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      arrivals.push(Date.now() - started);
      text += decoder.decode(chunk, { stream: true });
    }
    const total = arrivals.at(-1) ?? 0;
    assert.ok(total >= 800, `the stand-in paces 10 chunks 100 ms apart; the stream took ${total} ms`);
    assert.ok(
      (arrivals[0] ?? total) < total - 500,
      `first chunk at ${arrivals[0]} ms of ${total} ms: buffered`,
    );
    assert.ok(arrivals.length >= 5, `only ${arrivals.length} reads: chunks were merged`);
    assert.match(text, /data: \[DONE\]\n\n$/);
  });

  it('ends the upstream request when the client goes away mid-stream (vLLM stops generating)', async () => {
    const body = JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: 'long' }],
      stream: true,
      max_tokens: 10,
    });
    const aborted = pod.stats.aborted;
    const controller = new AbortController();
    const res = await fetch(`${guard.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body,
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    for (let i = 0; i < 100 && pod.stats.aborted === aborted; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(pod.stats.aborted, aborted + 1);
  });

  it('cuts the client off without a clean ending when vLLM dies mid-stream', async () => {
    pod.setFault({ kind: 'die_mid_stream', afterChunks: 2 });
    try {
      const body = JSON.stringify({
        model: MODEL,
        messages: [{ role: 'user', content: 'x' }],
        stream: true,
        max_tokens: 10,
      });
      const res = await fetch(`${guard.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body,
      });
      assert.equal(res.status, 200);
      await assert.rejects(res.text(), 'a truncated stream must not look complete');
    } finally {
      pod.setFault({ kind: 'none' });
    }
  });

  it('keeps the client connection alive across a streamed and a plain response', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string, body?: string): Promise<{ status: number; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const req = httpGet(
          `${guard.url}${path}`,
          {
            agent,
            method: body === undefined ? 'GET' : 'POST',
            headers: { ...AUTH, ...(body === undefined ? {} : json(body)) },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const stream = JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: 'a' }],
      stream: true,
      max_tokens: 2,
    });
    assert.deepEqual(await get('/v1/chat/completions', stream), { status: 200, reused: false });
    assert.deepEqual(await get('/v1/models'), { status: 200, reused: true });
    assert.deepEqual(await get('/v1/models'), { status: 200, reused: true });
    agent.destroy();
  });

  it('answers /health without a key with the status only', async () => {
    const res = await rawRequest(guard.port, httpRequest('GET', '/health'));
    assert.equal(res.status, 200);
    assert.deepEqual([pod.requests.at(-1)?.method, pod.requests.at(-1)?.path], ['GET', '/health']);
    assert.equal(res.body, '');
    assert.equal(res.headers['content-length'], '0');
    pod.setHealthy(false);
    try {
      assert.equal((await rawRequest(guard.port, httpRequest('GET', '/health'))).status, 503);
    } finally {
      pod.setHealthy(true);
    }
  });

  it("leaves the stand-in's /invocations unreachable, with or without the key", async () => {
    const direct = await fetch(`${pod.url}/invocations`, { method: 'POST', body: CHAT });
    assert.equal(direct.status, 200, 'the stand-in serves /invocations to anyone, as vLLM does');
    for (const headers of [{}, AUTH]) {
      const res = await unseen(() =>
        rawRequest(guard.port, httpRequest('POST', '/invocations', { ...headers, ...json(CHAT) }, CHAT)),
      );
      assert.equal(res.status, 404);
      assert.deepEqual(JSON.parse(res.body), { error: 'Not Found' });
    }
  });

  it('answers 404 to every other route, method and spelling, and never asks vLLM', async () => {
    const targets = [
      ['GET', '/tokenize'],
      ['PUT', '/tokenize'],
      ['GET', '/detokenize'],
      ['POST', '/pause'],
      ['POST', '/resume'],
      ['GET', '/metrics'],
      ['GET', '/version'],
      ['GET', '/ping'],
      ['POST', '/update_weights'],
      ['GET', '/'],
      ['POST', '/v1/../invocations'],
      ['POST', '//invocations'],
      ['POST', '/v1/chat/completions/../../tokenize'],
      ['POST', '/v1/chat/completions/../../../invocations'],
      ['GET', '/V1/models'],
      ['GET', '/v1/models/'],
      ['GET', '/v1//models'],
      ['GET', '/v1/models?x=1'],
      ['POST', '/invocations?/v1/chat/completions'],
      ['GET', '/v1/models?/../../metrics'],
      ['GET', '/v1/models#x'],
      ['GET', '/v1/%6dodels'],
      ['POST', '/v1/chat/completions%2f..%2f..%2finvocations'],
      ['POST', '/v1/chat/completions;/../../invocations'],
      ['GET', 'http://127.0.0.1/v1/models'],
      ['GET', '*'],
      ['HEAD', '/v1/models'],
      ['OPTIONS', '/v1/models'],
      ['PUT', '/v1/chat/completions'],
      ['GET', '/v1/chat/completions'],
      ['POST', '/v1/models'],
      ['DELETE', '/v1/models'],
      ['FOO', '/v1/models'],
      ['POST', '/health'],
      ['GET', '/v1/responses'],
    ] as const;
    for (const [method, target] of targets) {
      const res = await unseen(() => rawRequest(guard.port, httpRequest(method, target, AUTH)));
      assert.equal(res.status, 404, `${method} ${target} → ${res.status}`);
      if (method !== 'HEAD')
        assert.deepEqual(JSON.parse(res.body), { error: 'Not Found' }, `${method} ${target}`);
    }
  });

  it('answers 401 to a missing, wrong or odd-scheme key and never asks vLLM', async () => {
    const auths: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Bearer ${KEY}x` },
      { authorization: `bearer ${KEY}` },
      { authorization: `Bearer  ${KEY}` },
      { authorization: `Bearer ${KEY} ` },
      { authorization: KEY },
      { authorization: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}` },
      { authorization: `Token ${KEY}` },
      { authorization: 'Bearer ' },
      { 'x-api-key': KEY },
      { 'api-key': KEY },
    ];
    for (const auth of auths) {
      for (const [method, path, body] of [
        ['GET', '/v1/models', ''],
        ['POST', '/v1/chat/completions', CHAT],
      ] as const) {
        const res = await unseen(() =>
          rawRequest(guard.port, httpRequest(method, path, { ...auth, ...(body ? json(body) : {}) }, body)),
        );
        assert.equal(res.status, 401, `${JSON.stringify(auth)} ${path} → ${res.status}`);
        assert.deepEqual(JSON.parse(res.body), { error: 'Unauthorized' });
      }
    }
    // Two Authorization fields, one right: ambiguous, refused.
    const twice = `GET /v1/models HTTP/1.1\r\nhost: pod\r\nconnection: close\r\nauthorization: Bearer wrong\r\nauthorization: Bearer ${KEY}\r\n\r\n`;
    assert.equal((await unseen(() => rawRequest(guard.port, twice))).status, 401);
    // The key in the query string is not a key (and the target is not an allowed route).
    assert.equal(
      (await unseen(() => rawRequest(guard.port, httpRequest('GET', `/v1/models?api_key=${KEY}`)))).status,
      404,
    );
  });

  it('refuses bodies over 1 MiB by Content-Length (413) before reading them, and never asks vLLM', async () => {
    const over = await unseen(() =>
      rawRequest(
        guard.port,
        httpRequest(
          'POST',
          '/v1/chat/completions',
          { ...AUTH, 'content-type': 'application/json', 'content-length': String(1024 * 1024 + 1) },
          '{"model":',
        ),
      ),
    );
    assert.equal(over.status, 413);
    assert.equal(over.headers.connection, 'close');
  });

  it('decodes a chunked body and forwards it with a Content-Length', async () => {
    const half = Math.floor(CHAT.length / 2);
    const chunked = `${half.toString(16)};ext=1\r\n${CHAT.slice(0, half)}\r\n${(CHAT.length - half).toString(16)}\r\n${CHAT.slice(half)}\r\n0\r\nx-trailer: dropped\r\n\r\n`;
    const res = await rawRequest(
      guard.port,
      httpRequest(
        'POST',
        '/v1/chat/completions',
        { ...AUTH, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunked,
      ),
    );
    assert.equal(res.status, 200, res.body);
    const seen = pod.requests.at(-1);
    assert.equal(seen?.body, CHAT);
    assert.equal(seen?.headers['content-length'], String(Buffer.byteLength(CHAT)));
    assert.equal(seen?.headers['transfer-encoding'], undefined);
  });

  it('counts chunked bodies while reading them (413), and refuses ambiguous or broken framing (400/501)', async () => {
    const te = { ...AUTH, 'transfer-encoding': 'chunked' };
    const piece = 'x'.repeat(0x10000);
    const many = `${Array.from({ length: 17 }, () => `10000\r\n${piece}\r\n`).join('')}0\r\n\r\n`;
    const cases: [Record<string, string>, string, number][] = [
      [te, many, 413],
      [te, 'fffffffff\r\n', 400], // more than 8 hex digits
      [te, '5\r\nabc\r\n0\r\n\r\n', 400], // chunk shorter than declared
      [te, '0x5\r\nhello\r\n0\r\n\r\n', 400],
      [te, '5\nhello\n0\n\n', 400], // bare LF
      [te, '-5\r\nhello\r\n0\r\n\r\n', 400],
      [{ ...te, 'content-length': '5' }, '5\r\nhello\r\n0\r\n\r\n', 400], // CL and TE: the smuggling shape
      [{ ...AUTH, 'transfer-encoding': 'gzip, chunked' }, '0\r\n\r\n', 501],
      [{ ...AUTH, 'transfer-encoding': 'identity' }, '', 501],
    ];
    for (const [headers, body, status] of cases) {
      const res = await unseen(() =>
        rawRequest(guard.port, httpRequest('POST', '/v1/completions', headers, body)),
      );
      assert.equal(
        res.status,
        status,
        `${JSON.stringify(headers)} ${JSON.stringify(body.slice(0, 20))} → ${res.status}`,
      );
      assert.equal(res.headers.connection, 'close');
    }
  });

  it('refuses malformed or repeated Content-Length (400)', async () => {
    for (const length of ['-1', '1e3', '0x10', '+2', '١٢']) {
      const res = await unseen(() =>
        rawRequest(guard.port, httpRequest('POST', '/v1/completions', { ...AUTH, 'content-length': length })),
      );
      assert.equal(res.status, 400, `content-length ${JSON.stringify(length)} → ${res.status}`);
    }
    const twice = `POST /v1/completions HTTP/1.1\r\nhost: pod\r\nconnection: close\r\nauthorization: Bearer ${KEY}\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n{}`;
    assert.equal((await unseen(() => rawRequest(guard.port, twice))).status, 400);
  });

  it('logs one line per request with method, path, status and duration: no key, no content, no query', async () => {
    await rawRequest(
      guard.port,
      httpRequest('POST', '/v1/chat/completions', { ...AUTH, ...json(CHAT) }, CHAT),
    );
    await rawRequest(guard.port, httpRequest('GET', `/v1/models?key=${KEY}`, AUTH));
    // The guard writes its line after the response: wait for the second request's line.
    for (let i = 0; i < 100 && !/ 404 \d+ms$/.test(guard.lines().at(-1) ?? ''); i++)
      await new Promise((r) => setTimeout(r, 20));
    const lines = guard.lines();
    assert.match(lines[0] ?? '', /^guard v3 listening on 127\.0\.0\.1:\d+, upstream 127\.0\.0\.1:\d+$/);
    for (const line of lines.slice(1)) assert.match(line, /^guard [A-Z*]+ \S+ \d{3} \d+ms$/, line);
    assert.match(lines.at(-2) ?? '', /^guard POST \/v1\/chat\/completions 200 \d+ms$/);
    assert.match(lines.at(-1) ?? '', /^guard GET \/v1\/models 404 \d+ms$/);
    const all = lines.join('\n');
    for (const secret of [KEY, 'SECRET-PROMPT-TEXT', 'key='])
      assert.ok(!all.includes(secret), `log contains ${secret}`);
  });
});
