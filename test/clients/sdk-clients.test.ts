import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ideSnippet } from '../../src/cli/ide-snippets.js';
import { GATEWAY_KEY, MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ensureClients, importClient } from './client-cache.js';

/*
 * The SDKs people use, pinned (client-cache.ts), each run twice: directly against the scripted
 * vLLM stand-in, and through the gateway in front of it. What the client sees must be equal —
 * except the over-context error, where the gateway's is OpenAI's own `context_length_exceeded`.
 */

type Target = { baseURL: string; apiKey: string };
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const TOOLS = [
  {
    type: 'function' as const,
    function: {
      name: 'read_file',
      description: 'Read a file',
      parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
    },
  },
];
const OVER = 'token '.repeat(40_000);

let gw: TestGateway;
let viaGateway: Target;
let direct: Target;

before(
  async () => {
    ensureClients();
    gw = await startTestGateway({ pod: { maxModelLen: 32_768 } });
    viaGateway = { baseURL: gw.baseUrl, apiKey: GATEWAY_KEY };
    direct = { baseURL: `${gw.pod?.url}/v1`, apiKey: POD_KEY };
  },
  { timeout: 900_000 },
); // the first run installs the pinned clients
after(() => gw?.close());

async function both<T>(run: (t: Target) => Promise<T>): Promise<{ gateway: T; direct: T }> {
  return { direct: await run(direct), gateway: await run(viaGateway) };
}

async function failure(
  promise: Promise<unknown>,
): Promise<{ status: number; message: string; code: unknown }> {
  try {
    await promise;
  } catch (err) {
    const e = err as Any;
    return {
      status: e.status ?? e.statusCode ?? e.lastError?.statusCode,
      message: String(e.error?.message ?? e.message),
      code: e.code ?? e.error?.code,
    };
  }
  throw new Error('expected a failure');
}

for (const pkg of ['openai6', 'openai7'] as const) {
  describe(`official openai SDK (${pkg === 'openai6' ? '6.49.0' : '7.59.0 on Node 20'})`, () => {
    const client = async (t: Target) => {
      const { default: OpenAI } = await importClient<Any>(pkg);
      return new OpenAI({ ...t, maxRetries: 0 });
    };

    it('chat, and a streamed tool-call turn, equal direct and through the gateway', async () => {
      const chat = await both(
        async (t) =>
          (
            await (
              await client(t)
            ).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello there' }] })
          ).choices[0].message.content,
      );
      assert.equal(chat.gateway, chat.direct);
      assert.match(chat.gateway, /^You said: hello there/);
      const tool = await both(async (t) => {
        const stream = await (
          await client(t)
        ).chat.completions.create({
          model: MODEL,
          stream: true,
          stream_options: { include_usage: true },
          tools: TOOLS,
          messages: [{ role: 'user', content: 'please read src/app.ts' }],
        });
        let name = '';
        let args = '';
        let finish = '';
        let usage = 0;
        for await (const chunk of stream) {
          const call = chunk.choices[0]?.delta?.tool_calls?.[0];
          name += call?.function?.name ?? '';
          args += call?.function?.arguments ?? '';
          finish = chunk.choices[0]?.finish_reason ?? finish;
          usage = chunk.usage?.total_tokens ?? usage;
        }
        return { name, args: JSON.parse(args), finish, usage };
      });
      assert.deepEqual(tool.gateway, tool.direct);
      assert.deepEqual(tool.gateway, {
        name: 'read_file',
        args: { path: 'src/app.ts' },
        finish: 'tool_calls',
        usage: tool.direct.usage,
      });
    });

    it('Responses API, not streamed and streamed', async () => {
      const plain = await both(async (t) => {
        const r = await (await client(t)).responses.create({ model: MODEL, input: 'say hi to the team' });
        return { text: r.output_text, status: r.status, usage: r.usage?.total_tokens };
      });
      assert.deepEqual(plain.gateway, plain.direct);
      assert.match(plain.gateway.text, /^You said: say hi/);
      const streamed = await both(async (t) => {
        const stream = await (
          await client(t)
        ).responses.create({ model: MODEL, input: 'stream it', stream: true });
        const types: string[] = [];
        let text = '';
        for await (const event of stream) {
          types.push(event.type);
          if (event.type === 'response.output_text.delta') text += event.delta;
        }
        return { types, text };
      });
      assert.deepEqual(streamed.gateway, streamed.direct);
      assert.equal(streamed.gateway.types[0], 'response.created');
      assert.equal(streamed.gateway.types.at(-1), 'response.completed');
    });

    it('FIM (completions with a suffix), and an over-context prompt', async () => {
      const fim = await both(
        async (t) =>
          (
            await (
              await client(t)
            ).completions.create({
              model: MODEL,
              prompt: 'def add(a, b):\n    ',
              suffix: '\n\nprint(add(1, 2))',
              max_tokens: 16,
            })
          ).choices[0].text,
      );
      assert.equal(fim.gateway, fim.direct);
      const over = await both((t) =>
        client(t).then((c) =>
          failure(c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: OVER }] })),
        ),
      );
      assert.equal(over.gateway.status, 400);
      assert.equal(over.direct.status, 400);
      // vLLM's flat error body reads as "(no body)" to some SDK versions; through the gateway
      // the same words arrive in OpenAI's envelope.
      if (!/no body/.test(over.direct.message))
        assert.equal(over.gateway.message, over.direct.message, 'the same words');
      assert.match(over.gateway.message, /^This model's maximum context length is 32768 tokens/);
      assert.equal(
        over.gateway.code,
        'context_length_exceeded',
        "the better error: OpenAI's code, which clients do not retry",
      );
    });
  });
}

describe("ide-config openai-env: the SDK configured only by the snippet's variables", () => {
  it('new OpenAI() with no options reaches the gateway and the named model', async () => {
    const snippet = ideSnippet('openai-env', { baseUrl: gw.baseUrl, apiKey: GATEWAY_KEY, model: MODEL });
    const vars = Object.fromEntries([...snippet.matchAll(/^export (\w+)=(\S+)/gm)].map((m) => [m[1], m[2]]));
    const saved = { base: process.env.OPENAI_BASE_URL, key: process.env.OPENAI_API_KEY };
    process.env.OPENAI_BASE_URL = vars.OPENAI_BASE_URL;
    process.env.OPENAI_API_KEY = vars.OPENAI_API_KEY;
    try {
      const { default: OpenAI } = await importClient<Any>('openai6');
      const answer = await new OpenAI({ maxRetries: 0 }).chat.completions.create({
        model: vars.OPENAI_MODEL,
        messages: [{ role: 'user', content: 'env only' }],
      });
      assert.match(answer.choices[0].message.content, /^You said: env only/);
    } finally {
      if (saved.base === undefined) delete process.env.OPENAI_BASE_URL;
      else process.env.OPENAI_BASE_URL = saved.base;
      if (saved.key === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = saved.key;
    }
  });
});

describe('Vercel AI SDK (ai 6 + @ai-sdk/openai-compatible 2, @ai-sdk/openai 3)', () => {
  it('openai-compatible: a chat and a streamed tool call', async () => {
    const { generateText, streamText, tool, jsonSchema } = await importClient<Any>('ai');
    const { createOpenAICompatible } = await importClient<Any>('@ai-sdk/openai-compatible');
    const model = (t: Target) =>
      createOpenAICompatible({ name: 'rlm', baseURL: t.baseURL, apiKey: t.apiKey, includeUsage: true })(
        MODEL,
      );
    const chat = await both(
      async (t) => (await generateText({ model: model(t), prompt: 'hello ai sdk', maxRetries: 0 })).text,
    );
    assert.equal(chat.gateway, chat.direct);
    assert.match(chat.gateway, /^You said: hello ai sdk/);
    const calls = await both(async (t) => {
      const result = streamText({
        model: model(t),
        prompt: 'read lib/util.js',
        maxRetries: 0,
        tools: {
          read_file: tool({
            description: 'Read a file',
            inputSchema: jsonSchema({
              type: 'object',
              properties: { path: { type: 'string' } },
              required: ['path'],
            }),
          }),
        },
      });
      const out: unknown[] = [];
      for await (const part of result.fullStream)
        if (part.type === 'tool-call') out.push({ name: part.toolName, input: part.input });
      return out;
    });
    assert.deepEqual(calls.gateway, calls.direct);
    assert.deepEqual(calls.gateway, [{ name: 'read_file', input: { path: 'lib/util.js' } }]);
  });

  it('@ai-sdk/openai default model: the Responses API, generate and stream', async () => {
    const { generateText, streamText } = await importClient<Any>('ai');
    const { createOpenAI } = await importClient<Any>('@ai-sdk/openai');
    const model = (t: Target) => createOpenAI({ baseURL: t.baseURL, apiKey: t.apiKey })(MODEL);
    const plain = await both(async (t) => {
      const r = await generateText({ model: model(t), prompt: 'hello responses', maxRetries: 0 });
      return { text: r.text, input: r.usage.inputTokens, output: r.usage.outputTokens };
    });
    assert.deepEqual(plain.gateway, plain.direct);
    assert.match(plain.gateway.text, /^You said: hello responses/);
    const streamed = await both(async (t) => {
      const r = streamText({ model: model(t), prompt: 'stream responses', maxRetries: 0 });
      let text = '';
      for await (const delta of r.textStream) text += delta;
      return text;
    });
    assert.equal(streamed.gateway, streamed.direct);
    assert.match(streamed.gateway, /^You said: stream responses/);
    assert.ok(
      gw.pod?.requests.some((r) => r.path === '/v1/responses'),
      'the default model speaks the Responses API',
    );
  });
});

describe('LangChain (@langchain/openai 1.5.8)', () => {
  it('ChatOpenAI over chat completions and with useResponsesApi', async () => {
    const { ChatOpenAI } = await importClient<Any>('@langchain/openai');
    for (const useResponsesApi of [false, true]) {
      const answer = await both(async (t) => {
        const llm = new ChatOpenAI({
          model: MODEL,
          apiKey: t.apiKey,
          configuration: { baseURL: t.baseURL },
          maxRetries: 0,
          useResponsesApi,
        });
        const msg = await llm.invoke('hello langchain');
        return typeof msg.content === 'string'
          ? msg.content
          : msg.content.map((p: Any) => p.text ?? '').join('');
      });
      assert.equal(answer.gateway, answer.direct, `useResponsesApi ${useResponsesApi}`);
      assert.match(answer.gateway, /^You said: hello langchain/);
    }
  });
});
