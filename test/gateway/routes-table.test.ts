import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  API_QUERIES,
  API_ROUTES,
  queryAllowed,
  routePairs,
  upstreamPathFor,
} from '../../src/gateway/routes/route-table.js';
import { startVllmStandin } from '../../src/emulator/vllm-standin.js';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import {
  chatBody,
  GATEWAY_KEY,
  MODEL,
  POD_KEY,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.js';
import { startGuard } from '../guard/run-guard.js';

const GUARD = join(import.meta.dirname, '../../src/guard/guard.py');

/** The guard's ROUTES as python3 sees them (the module is imported, not parsed by us). */
function guardRoutes(): Array<[string, string]> {
  const script = `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("guard", sys.argv[1])
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)
print(json.dumps(sorted([list(r) for r in guard.ROUTES], key=lambda r: (r[1], r[0]))))`;
  return JSON.parse(execFileSync('python3', ['-B', '-c', script, GUARD], { encoding: 'utf8' })) as Array<
    [string, string]
  >;
}

/** The guard's QUERIES as python3 sees them: `METHOD path` → parameter → pattern source. */
function guardQueries(): Record<string, Record<string, string>> {
  const script = `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("guard", sys.argv[1])
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)
print(json.dumps({m + " " + p: {n: r.pattern for n, r in q.items()} for (m, p), q in guard.QUERIES.items()}))`;
  return JSON.parse(execFileSync('python3', ['-B', '-c', script, GUARD], { encoding: 'utf8' })) as Record<
    string,
    Record<string, string>
  >;
}

describe('one route table for the gateway and the pod guard', () => {
  it("the guard's allow-list equals the gateway's table", () => {
    assert.deepEqual(guardRoutes(), routePairs());
    assert.ok(routePairs().some(([m, p]) => m === 'POST' && p === '/v1/responses'));
  });

  it("the guard's query allow-list (QUERIES) equals the gateway's (API_QUERIES), on table routes", () => {
    assert.deepEqual(guardQueries(), API_QUERIES);
    const pairs = new Set(routePairs().map(([m, p]) => `${m} ${p}`));
    for (const route of Object.keys(API_QUERIES)) assert.ok(pairs.has(route), route);
    const retrieve = { method: 'GET', path: '/v1/responses/{id}' } as const;
    assert.equal(queryAllowed(retrieve, 'starting_after=42&stream=true'), true);
    for (const query of ['', 'stream', 'stream=TRUE', 'stream=true&stream=true', 'starting_after=%31', 'x=1'])
      assert.equal(queryAllowed(retrieve, query), false, query);
    assert.equal(queryAllowed({ method: 'GET', path: '/v1/models' }, 'stream=true'), false);
  });

  it('maps table paths onto the upstream base URL', () => {
    assert.equal(upstreamPathFor('/v1', '/v1/responses/resp_1'), '/v1/responses/resp_1');
    assert.equal(upstreamPathFor('/proxy/pod-8000/v1', '/v1/rerank'), '/proxy/pod-8000/v1/rerank');
    assert.equal(upstreamPathFor('/proxy/pod-8000/v1', '/tokenize'), '/proxy/pod-8000/tokenize');
    assert.equal(upstreamPathFor('/v1', '/detokenize'), '/detokenize');
  });

  it('the gateway answers every table route (none is a 404)', async () => {
    const gw = await startTestGateway({ config: { key_rate_limit_requests: 10_000 } });
    try {
      for (const spec of API_ROUTES) {
        const path = spec.path.replace('{id}', 'resp_missing');
        const res = await gw.api(path, spec.method === 'POST' ? { method: 'POST', json: {} } : {});
        const body = (await res.json()) as { error?: { code?: string } };
        assert.notEqual(body.error?.code, 'unknown_url', `${spec.method} ${path}`);
        if (spec.path.includes('{id}')) assert.equal(res.status, 404, 'the pod knows no such response');
        else assert.notEqual(res.status, 404, `${spec.method} ${path}`);
      }
    } finally {
      await gw.close();
    }
  });
});

describe('every table route works end to end through the real pod guard (python3 guard.py)', () => {
  it('gateway → guard → vLLM stand-in: each route answers as vLLM does, none is refused by the guard', async () => {
    const pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY });
    const guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: POD_KEY });
    const gw = await startTestGateway({
      pod: false,
      routes: staticRouteSource(`${guard.url}/v1`, POD_KEY, MODEL),
      config: { key_rate_limit_requests: 10_000 },
    });
    try {
      const created = (await (
        await gw.api('/v1/responses', { method: 'POST', json: { model: MODEL, input: 'through the guard' } })
      ).json()) as { id: string; output_text?: string };
      assert.match(created.id, /^resp_/);
      const bodies: Record<string, unknown> = {
        '/v1/chat/completions': chatBody('hi'),
        '/v1/completions': { model: MODEL, prompt: 'def f(', suffix: ')' },
        '/v1/embeddings': { model: MODEL, input: 'x' },
        '/v1/responses': { model: MODEL, input: 'hi' },
        '/v1/rerank': { model: MODEL, query: 'a', documents: ['a', 'b'] },
        '/v1/score': { model: MODEL, text_1: 'a', text_2: 'b' },
        '/tokenize': { model: MODEL, prompt: 'a b' },
        '/detokenize': { model: MODEL, tokens: [1000] },
      };
      for (const spec of API_ROUTES) {
        const path = spec.path.replace('{id}', created.id);
        const res = await gw.api(
          path,
          spec.method === 'POST' ? { method: 'POST', json: bodies[spec.path] ?? {} } : {},
        );
        const text = await res.text();
        assert.notEqual(text, '{"error":"Not Found"}', `the guard refused ${spec.method} ${path}`);
        if (spec.path.endsWith('/cancel'))
          assert.equal(res.status, 400, 'vLLM: a synchronous response cannot be cancelled');
        else assert.equal(res.status, 200, `${spec.method} ${path}: ${text.slice(0, 200)}`);
      }
      // Paths outside the table stay closed at the guard even with the pod key.
      const closed = await fetch(`${guard.url}/pooling`, {
        method: 'POST',
        headers: { authorization: `Bearer ${POD_KEY}` },
        body: '{}',
      });
      assert.equal(closed.status, 404);
      await closed.arrayBuffer();
    } finally {
      await gw.close();
      await guard.close();
      await pod.close();
    }
  });
});

describe('Responses API, rerank, score, tokenize through the gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ config: { key_rate_limit_requests: 10_000 } });
  });
  after(() => gw.close());

  const direct = (path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> => {
    const pod = gw.pod;
    assert.ok(pod);
    return fetch(`${pod.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${POD_KEY}`, 'content-type': 'application/json' },
      body: init.json === undefined ? null : JSON.stringify(init.json),
    });
  };

  it('POST /v1/responses (not streamed) is stored on the pod, retrieved by id, usage logged', async () => {
    const res = await gw.api('/v1/responses', {
      method: 'POST',
      json: { model: MODEL, input: 'write a haiku about ports' },
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      id: string;
      object: string;
      status: string;
      output: Array<{ content: Array<{ text: string }> }>;
      usage: { input_tokens: number; output_tokens: number };
    };
    assert.equal(body.object, 'response');
    assert.equal(body.status, 'completed');
    assert.match(body.output[0]?.content[0]?.text ?? '', /^You said: write a haiku/);
    assert.equal(res.headers.get('x-cache'), 'BYPASS', 'a stored response is state: never cached');
    const got = await gw.api(`/v1/responses/${body.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(await got.json(), body);
    const line = gw.logs.lines().find((l) => l.msg === 'request' && l.path === '/v1/responses');
    assert.equal(line?.tokensIn, body.usage.input_tokens);
    assert.equal(line?.tokensOut, body.usage.output_tokens);
  });

  it('streamed Responses events pass unchanged (event names, sequence numbers, usage)', async () => {
    const res = await gw.api('/v1/responses', {
      method: 'POST',
      json: { model: MODEL, input: 'stream please', stream: true, store: false },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const text = await res.text();
    const types = [...text.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    assert.equal(types[0], 'response.created');
    assert.ok(types.includes('response.output_text.delta'));
    assert.equal(types.at(-1), 'response.completed');
    const viaDirect = await (
      await direct('/v1/responses', {
        method: 'POST',
        json: { model: MODEL, input: 'stream please', stream: true, store: false },
      })
    ).text();
    // Same frames apart from the ids and timestamps the pod makes up per response.
    const normalise = (s: string) =>
      s.replace(/"(resp|msg)_[0-9a-f]+"/g, '"$1_X"').replace(/"created_at":\d+/g, '"created_at":0');
    assert.equal(normalise(text), normalise(viaDirect));
    const line = gw.logs
      .lines()
      .filter((l) => l.msg === 'request' && l.path === '/v1/responses')
      .at(-1);
    assert.ok(Number(line?.tokensOut) > 0, 'usage read from response.completed');
  });

  it('cancel and unknown ids pass vLLM answers through in the OpenAI envelope; a bad id is refused here', async () => {
    const created = (await (
      await gw.api('/v1/responses', { method: 'POST', json: { input: 'x' } })
    ).json()) as { id: string };
    const cancel = await gw.api(`/v1/responses/${created.id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 400);
    assert.match(
      ((await cancel.json()) as { error: { message: string } }).error.message,
      /Cannot cancel a synchronous response/,
    );
    const missing = await gw.api('/v1/responses/resp_nope');
    assert.equal(missing.status, 404);
    assert.match(
      ((await missing.json()) as { error: { message: string } }).error.message,
      /resp_nope' not found/,
    );
    const bad = await gw.api('/v1/responses/a%2F..%2Fb');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { param: string } }).error.param, 'id');
  });

  it('rerank, score, tokenize and detokenize answer as vLLM does directly', async () => {
    const rerankBody = {
      model: MODEL,
      query: 'parse json',
      documents: ['parse the json body', 'draw a cat', 'json'],
      top_n: 2,
    };
    const strip = (v: Record<string, unknown>) => ({ ...v, id: undefined, created: undefined });
    const viaGateway = (await (
      await gw.api('/v1/rerank', { method: 'POST', json: rerankBody })
    ).json()) as Record<string, unknown>;
    const viaPod = (await (
      await direct('/v1/rerank', { method: 'POST', json: rerankBody })
    ).json()) as Record<string, unknown>;
    assert.deepEqual(strip(viaGateway), strip(viaPod));
    assert.equal((viaGateway.results as unknown[]).length, 2);
    const scoreBody = { model: MODEL, text_1: 'a b', text_2: ['a b', 'c'] };
    assert.deepEqual(
      strip(
        (await (await gw.api('/v1/score', { method: 'POST', json: scoreBody })).json()) as Record<
          string,
          unknown
        >,
      ),
      strip(
        (await (await direct('/v1/score', { method: 'POST', json: scoreBody })).json()) as Record<
          string,
          unknown
        >,
      ),
    );
    const tokens = (await (
      await gw.api('/tokenize', { method: 'POST', json: { model: MODEL, prompt: 'hello big world' } })
    ).json()) as { count: number; tokens: number[] };
    assert.equal(tokens.count, 3);
    const text = (await (
      await gw.api('/detokenize', { method: 'POST', json: { model: MODEL, tokens: tokens.tokens } })
    ).json()) as { prompt: string };
    assert.equal(text.prompt, 'hello big world');
    const upstreamPaths = gw.pod?.requests.map((r) => r.path) ?? [];
    assert.ok(
      upstreamPaths.includes('/tokenize') && upstreamPaths.includes('/detokenize'),
      'root routes go to the pod root, not under /v1',
    );
  });

  it('rerank is deterministic and stateless: the second identical request is a cache hit', async () => {
    const body = { model: MODEL, query: 'cache me', documents: ['cache me please', 'other'] };
    const first = await gw.api('/v1/rerank', { method: 'POST', json: body });
    await first.arrayBuffer();
    const second = await gw.api('/v1/rerank', { method: 'POST', json: body });
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.equal(second.status, 200);
  });

  it('a Responses request is cached only when nothing of it is stored on the pod (store: false)', async () => {
    const stateless = { model: MODEL, input: 'cache this', temperature: 0, store: false };
    await (await gw.api('/v1/responses', { method: 'POST', json: stateless })).arrayBuffer();
    const again = await gw.api('/v1/responses', { method: 'POST', json: stateless });
    assert.equal(again.headers.get('x-cache'), 'HIT');
    await again.arrayBuffer();
    const stored = { ...stateless, store: true };
    await (await gw.api('/v1/responses', { method: 'POST', json: stored })).arrayBuffer();
    const storedAgain = await gw.api('/v1/responses', { method: 'POST', json: stored });
    assert.equal(storedAgain.headers.get('x-cache'), 'BYPASS');
    await storedAgain.arrayBuffer();
    const storedAtPod = gw.pod?.requests.filter(
      (r) => r.path === '/v1/responses' && r.body.includes('"store":true'),
    ).length;
    assert.equal(storedAtPod, 2, 'each stored request makes its own response on the pod');
  });

  it('validates the shapes it knows (400 naming the field) and needs the gateway key', async () => {
    const res = await gw.api('/v1/rerank', { method: 'POST', json: { model: MODEL, query: 'q' } });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { param: string } }).error.param, 'documents');
    const noInput = await gw.api('/v1/responses', { method: 'POST', json: { model: MODEL } });
    assert.equal(((await noInput.json()) as { error: { param: string } }).error.param, 'input');
    for (const path of ['/v1/responses', '/v1/rerank', '/tokenize']) {
      const open = await fetch(`${gw.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(open.status, 401, path);
      await open.arrayBuffer();
    }
  });
});

describe('prompt size: the model context decides, not a byte cap', () => {
  it('a 61 KB source file in one message is forwarded (no 50 KB cap by default)', async () => {
    const gw = await startTestGateway({ pod: { maxModelLen: 32_768 } });
    try {
      const file = 'const value = compute(input);\n'.repeat(2100); // ≈ 61 KB, ≈ 8k words
      assert.ok(Buffer.byteLength(file) > 61_000);
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody(`Review this file:\n${file}`),
      });
      assert.equal(res.status, 200);
    } finally {
      await gw.close();
    }
  });

  it('over the context: 400 context_length_exceeded with the limit in the message, one upstream request', async () => {
    const gw = await startTestGateway({ pod: { maxModelLen: 4096 } });
    try {
      const big = 'word '.repeat(5000);
      const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody(big) });
      assert.equal(res.status, 400);
      const body = (await res.json()) as {
        error: { message: string; type: string; code: string; param: string };
      };
      assert.equal(body.error.code, 'context_length_exceeded');
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(
        body.error.message,
        /^This model's maximum context length is 4096 tokens\. However, your request has 5003 input tokens/,
      );
      // max_tokens over what is left is the same error.
      const tooMany = await gw.api('/v1/completions', {
        method: 'POST',
        json: { model: MODEL, prompt: 'word '.repeat(4000), max_tokens: 500 },
      });
      const second = (await tooMany.json()) as { error: { message: string; code: string } };
      assert.equal(second.error.code, 'context_length_exceeded');
      assert.match(second.error.message, /maximum context length is 4096 tokens/);
      assert.equal(gw.pod?.requests.length, 2, 'no retry');
    } finally {
      await gw.close();
    }
  });

  it('max_content_length remains a setting: set, it refuses a long message with content_too_long', async () => {
    const gw = await startTestGateway({ config: { max_content_length: 50_000 } });
    try {
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody('x'.repeat(60_000)),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'content_too_long');
    } finally {
      await gw.close();
    }
  });
});

describe('limits that fit an IDE', () => {
  it('120 authenticated requests in a minute from one key at the defaults: no 429', async () => {
    const gw = await startTestGateway();
    try {
      const statuses = new Map<number, number>();
      for (let i = 0; i < 120; i++) {
        const res = await gw.api('/v1/completions', {
          method: 'POST',
          json: { model: MODEL, prompt: `def f${i}(`, suffix: '\n', max_tokens: 4 },
        });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
      assert.deepEqual([...statuses], [[200, 120]]);
      const last = await gw.api('/v1/models');
      assert.equal(last.headers.get('x-ratelimit-limit'), '1200');
      assert.equal(last.headers.get('x-ratelimit-remaining'), String(1200 - 121));
    } finally {
      await gw.close();
    }
  });

  it('an unauthenticated flood from one IP still meets 429 after 60, and then a guessed key gets no answer', async () => {
    const gw = await startTestGateway();
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 65; i++) {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: {
            authorization: `Bearer wrong_key_${i}_000000000000`,
            'content-type': 'application/json',
          },
          body: '{}',
        });
        await res.arrayBuffer();
        statuses.push(res.status);
      }
      assert.deepEqual(statuses.slice(0, 60), Array(60).fill(401));
      assert.deepEqual(statuses.slice(60), Array(5).fill(429));
      // The right key from the same IP is refused too while the window is full: no oracle.
      const right = await fetch(`${gw.url}/v1/models`, {
        headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      });
      assert.equal(right.status, 429);
    } finally {
      await gw.close();
    }
  });

  it('key_rate_limit_tokens refuses a key whose answers used up the window, with the token headers', async () => {
    const gw = await startTestGateway({ config: { key_rate_limit_tokens: 30 } });
    try {
      const first = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chatBody(
          'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty',
        ),
      });
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '30');
      const used = ((await first.json()) as { usage: { total_tokens: number } }).usage.total_tokens;
      assert.ok(used >= 30);
      const second = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('again') });
      assert.equal(second.status, 429);
      assert.match(
        ((await second.json()) as { error: { message: string } }).error.message,
        /30 tokens per 60 s/,
      );
      assert.ok(Number(second.headers.get('retry-after')) >= 1);
    } finally {
      await gw.close();
    }
  });
});

describe('401 carries an RFC 6750 challenge', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  it('no token: realm only; a wrong token: error="invalid_token"', async () => {
    const none = await fetch(`${gw.url}/v1/models`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="runpod-llm"');
    const basic = await fetch(`${gw.url}/v1/models`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(basic.headers.get('www-authenticate'), 'Bearer realm="runpod-llm"');
    const wrong = await fetch(`${gw.url}/v1/models`, {
      headers: { authorization: 'Bearer not_the_key_0000000000' },
    });
    assert.equal(wrong.status, 401);
    assert.match(
      wrong.headers.get('www-authenticate') ?? '',
      /^Bearer realm="runpod-llm", error="invalid_token"/,
    );
    await Promise.all([none.arrayBuffer(), basic.arrayBuffer(), wrong.arrayBuffer()]);
  });
});
