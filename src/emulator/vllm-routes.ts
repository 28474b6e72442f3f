import { randomBytes } from 'node:crypto';

/*
 * The stand-in's answers for vLLM's other OpenAI routes: the Responses API
 * (vllm/entrypoints/openai/responses/api_router.py: create, retrieve, cancel; SSE events as
 * `event: <type>` + `data: {…}`), /v1/rerank, /v1/score, /tokenize, /detokenize; the context
 * check vLLM makes before generating; and tool calls — a "model" that, given tools and a user
 * turn, calls the tool that reads (its path-like parameters filled from the prompt) and, given a
 * tool result, says how many bytes it read, so an agent turn can be followed end to end.
 *
 * "Tokens" are words (whitespace-separated) plus 3 per chat message, as in vllm-generate.ts.
 */

/** One answer of the stand-in: a JSON body or SSE frames, with its status. */
export interface VllmAnswer {
  status: number;
  /** A JSON value, or SSE event strings (each a complete `…\n\n` frame). */
  json?: unknown;
  sse?: string[];
}

type Body = Record<string, unknown>;

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

function hex(n: number): string {
  return randomBytes(n).toString('hex');
}

export function vllmErrorBody(
  status: number,
  type: string,
  message: string,
  param: string | null = null,
): VllmAnswer {
  return { status, json: { object: 'error', message, type, param, code: status } };
}

/** vLLM's context check (serving layer wording, 0.10+): prompt alone, then prompt + max_tokens. */
export function contextCheck(
  promptTokens: number,
  maxTokens: number | undefined,
  maxModelLen: number,
): VllmAnswer | undefined {
  if (promptTokens >= maxModelLen) {
    return vllmErrorBody(
      400,
      'BadRequestError',
      `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${promptTokens} input tokens. Please reduce the length of the input messages.`,
    );
  }
  if (maxTokens !== undefined && promptTokens + maxTokens > maxModelLen) {
    return vllmErrorBody(
      400,
      'BadRequestError',
      `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context length is ${maxModelLen} tokens and your request has ${promptTokens} input tokens (${maxTokens} > ${maxModelLen} - ${promptTokens}).`,
    );
  }
  return undefined;
}

export function requestedMaxTokens(body: Body): number | undefined {
  const value = body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens;
  return typeof value === 'number' && value > 0 ? Math.floor(value) : undefined;
}

/** The words of every text the model reads in a chat body (for the context check). */
export function chatPromptTokens(body: Body): number {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  let n = 0;
  for (const m of messages) n += words(textOf((m as { content?: unknown } | null)?.content)).length + 3;
  if (Array.isArray(body.tools)) n += words(JSON.stringify(body.tools)).length;
  return n;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content
      .map((p) =>
        typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string'
          ? (p as { text: string }).text
          : '',
      )
      .join(' ');
  return '';
}

// ---------------------------------------------------------------------------------------------
// Tool calls (chat completions)

interface ToolSpec {
  name: string;
  parameters: { properties?: Record<string, { type?: string }>; required?: string[] } | undefined;
}

function toolsOf(body: Body): ToolSpec[] {
  if (!Array.isArray(body.tools) || body.tool_choice === 'none') return [];
  const out: ToolSpec[] = [];
  for (const t of body.tools as Array<Record<string, unknown>>) {
    const fn = (t.function ?? t) as { name?: unknown; parameters?: unknown };
    if (typeof fn.name === 'string')
      out.push({ name: fn.name, parameters: fn.parameters as ToolSpec['parameters'] });
  }
  return out;
}

/** The arguments the scripted model passes: path-like parameters get the path named in the prompt. */
function toolArguments(tool: ToolSpec, prompt: string): string {
  const path =
    /(?:^|\s)((?:\.{0,2}\/)?[\w.\-/]+\.\w{1,8})(?=\s|$|[.,;:!?'"])/.exec(prompt)?.[1] ?? 'README.md';
  const args: Record<string, unknown> = {};
  const props = tool.parameters?.properties ?? {};
  for (const name of tool.parameters?.required ?? Object.keys(props).slice(0, 1)) {
    const type = props[name]?.type;
    if (/path|file/i.test(name) || type === 'string' || type === undefined)
      args[name] = /path|file/i.test(name) ? path : prompt.slice(0, 40);
    else if (type === 'number' || type === 'integer') args[name] = 1;
    else if (type === 'boolean') args[name] = false;
    else if (type === 'array') args[name] = [];
    else args[name] = {};
  }
  return JSON.stringify(args);
}

function pickTool(tools: ToolSpec[]): ToolSpec {
  return (
    tools.find((t) => /^read/i.test(t.name)) ??
    tools.find((t) => /read/i.test(t.name)) ??
    (tools[0] as ToolSpec)
  );
}

/**
 * A chat turn with tools: a user turn calls a tool; after a tool result the model answers
 * `Read N bytes.` (N: the UTF-8 length of the last tool result). Undefined: no tools involved.
 */
export function scriptedToolTurn(body: Body, model: string): VllmAnswer | undefined {
  const messages = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const last = messages[messages.length - 1];
  if (last === undefined) return undefined;
  const tools = toolsOf(body);
  const id = `chatcmpl-${hex(12)}`;
  const created = Math.floor(Date.now() / 1000);
  const stream = body.stream === true;
  const promptTokens = chatPromptTokens(body);
  const usage = (completion: number) => ({
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completion,
    completion_tokens: completion,
    prompt_tokens_details: null,
  });
  const withUsage =
    typeof body.stream_options === 'object' &&
    body.stream_options !== null &&
    (body.stream_options as { include_usage?: unknown }).include_usage === true;
  if (last.role === 'tool') {
    const tokens = words(`Read ${Buffer.byteLength(textOf(last.content))} bytes.`).map((w, i) =>
      i === 0 ? w : ` ${w}`,
    );
    if (!stream) {
      return {
        status: 200,
        json: {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: tokens.join(''),
                refusal: null,
                tool_calls: [],
                reasoning_content: null,
              },
              logprobs: null,
              finish_reason: 'stop',
              stop_reason: null,
            },
          ],
          usage: usage(tokens.length),
          prompt_logprobs: null,
        },
      };
    }
    const base = { id, object: 'chat.completion.chunk', created, model };
    const frame = (value: object) => `data: ${JSON.stringify(value)}\n\n`;
    const sse = [
      frame({
        ...base,
        choices: [
          { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
        ],
      }),
      ...tokens.map((t) =>
        frame({
          ...base,
          choices: [{ index: 0, delta: { content: t }, logprobs: null, finish_reason: null }],
        }),
      ),
      frame({
        ...base,
        choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop', stop_reason: null }],
      }),
    ];
    if (withUsage) sse.push(frame({ ...base, choices: [], usage: usage(tokens.length) }));
    sse.push('data: [DONE]\n\n');
    return { status: 200, sse };
  }
  if (tools.length === 0 || last.role !== 'user') return undefined;
  const tool = pickTool(tools);
  const args = toolArguments(tool, textOf(last.content));
  const callId = `chatcmpl-tool-${hex(8)}`;
  if (!stream) {
    return {
      status: 200,
      json: {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: null,
              refusal: null,
              tool_calls: [{ id: callId, type: 'function', function: { name: tool.name, arguments: args } }],
              reasoning_content: null,
            },
            logprobs: null,
            finish_reason: 'tool_calls',
            stop_reason: null,
          },
        ],
        usage: usage(8),
        prompt_logprobs: null,
      },
    };
  }
  const base = { id, object: 'chat.completion.chunk', created, model };
  const chunk = (delta: object, finish: string | null = null) =>
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish, ...(finish === null ? {} : { stop_reason: null }) }] })}\n\n`;
  const pieces = args.length > 12 ? [args.slice(0, 10), args.slice(10)] : [args];
  const sse = [
    chunk({ role: 'assistant', content: '' }),
    chunk({
      tool_calls: [{ id: callId, type: 'function', index: 0, function: { name: tool.name, arguments: '' } }],
    }),
    ...pieces.map((p) => chunk({ tool_calls: [{ index: 0, function: { arguments: p } }] })),
    chunk({}, 'tool_calls'),
  ];
  if (withUsage) sse.push(`data: ${JSON.stringify({ ...base, choices: [], usage: usage(8) })}\n\n`);
  sse.push('data: [DONE]\n\n');
  return { status: 200, sse };
}

// ---------------------------------------------------------------------------------------------
// Responses API

const STORED_MAX = 500;

export class ResponsesStore {
  readonly #stored = new Map<string, Record<string, unknown>>();
  /** The events of background streams (`background` + `stream`), replayed by a streamed retrieve. */
  readonly #events = new Map<string, string[]>();

  /** `POST /v1/responses`. */
  create(body: Body, model: string, maxModelLen: number): VllmAnswer {
    const input = body.input;
    if (typeof input !== 'string' && !Array.isArray(input))
      return vllmErrorBody(
        400,
        'BadRequestError',
        "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'input'), 'msg': 'Field required'}",
      );
    if (body.model !== undefined && body.model !== null && body.model !== model)
      return vllmErrorBody(
        404,
        'NotFoundError',
        `The model \`${typeof body.model === 'string' ? body.model : JSON.stringify(body.model)}\` does not exist.`,
        'model',
      );
    const texts =
      typeof input === 'string'
        ? [input]
        : (input as Array<Record<string, unknown>>).map((item) => textOf(item.content ?? item.output));
    if (typeof body.instructions === 'string') texts.push(body.instructions);
    const promptTokens = texts.reduce((n, t) => n + words(t).length + 3, 0);
    const maxTokens = requestedMaxTokens(body);
    const refused = contextCheck(promptTokens, maxTokens, maxModelLen);
    if (refused !== undefined) return refused;
    const last = texts[typeof input === 'string' ? 0 : texts.length - 1] ?? '';
    const answer = ['You', 'said:', ...words(last).slice(0, 4), 'the', 'quick', 'brown', 'fox'].slice(
      0,
      Math.max(1, Math.min(maxTokens ?? 8, 8)),
    );
    const text = answer.join(' ');
    const id = `resp_${hex(16)}`;
    const msgId = `msg_${hex(16)}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const usage = {
      input_tokens: promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: answer.length,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: promptTokens + answer.length,
    };
    const part = { annotations: [], text, type: 'output_text', logprobs: null };
    const item = { id: msgId, content: [part], role: 'assistant', status: 'completed', type: 'message' };
    const response = (status: string, output: unknown[], withUsage: boolean) => ({
      id,
      created_at: createdAt,
      incomplete_details: null,
      instructions: typeof body.instructions === 'string' ? body.instructions : null,
      metadata: null,
      model,
      object: 'response',
      output,
      parallel_tool_calls: true,
      temperature: typeof body.temperature === 'number' ? body.temperature : 1,
      tool_choice: 'auto',
      tools: [],
      top_p: typeof body.top_p === 'number' ? body.top_p : 1,
      background: body.background === true,
      max_output_tokens: maxTokens ?? maxModelLen - promptTokens,
      max_tool_calls: null,
      previous_response_id: typeof body.previous_response_id === 'string' ? body.previous_response_id : null,
      prompt: null,
      reasoning: null,
      service_tier: 'auto',
      status,
      text: null,
      top_logprobs: null,
      truncation: 'disabled',
      usage: withUsage ? usage : null,
      user: null,
    });
    const done = response('completed', [item], true);
    if (body.store !== false) {
      this.#stored.set(id, done);
      if (this.#stored.size > STORED_MAX) {
        const oldest = this.#stored.keys().next().value as string;
        this.#stored.delete(oldest);
        this.#events.delete(oldest);
      }
    }
    if (body.stream !== true) return { status: 200, json: done };
    let seq = 0;
    const ev = (type: string, fields: object) =>
      `event: ${type}\ndata: ${JSON.stringify({ ...fields, type, sequence_number: seq++ })}\n\n`;
    const where = { item_id: msgId, output_index: 0, content_index: 0 };
    const sse = [
      ev('response.created', { response: response('in_progress', [], false) }),
      ev('response.in_progress', { response: response('in_progress', [], false) }),
      ev('response.output_item.added', {
        item: { id: msgId, content: [], role: 'assistant', status: 'in_progress', type: 'message' },
        output_index: 0,
      }),
      ev('response.content_part.added', {
        ...where,
        part: { annotations: [], text: '', type: 'output_text', logprobs: null },
      }),
      ...answer.map((w, i) =>
        ev('response.output_text.delta', { ...where, delta: i === 0 ? w : ` ${w}`, logprobs: [] }),
      ),
      ev('response.output_text.done', { ...where, text, logprobs: [] }),
      ev('response.content_part.done', { ...where, part }),
      ev('response.output_item.done', { item, output_index: 0 }),
      ev('response.completed', { response: done }),
    ];
    if (body.background === true && this.#stored.has(id)) this.#events.set(id, sse);
    return { status: 200, sse };
  }

  /**
   * `GET /v1/responses/{id}[?stream=true&starting_after=N]`: the stored response, or with
   * `stream=true` the events of a background stream after sequence number N (all without N).
   * vLLM keeps events only for background streams; for any other response it fails the stream
   * (`Unknown response_id`), which the stand-in answers as a 400.
   */
  retrieve(id: string, query?: URLSearchParams): VllmAnswer {
    const found = this.#stored.get(id);
    if (found === undefined) return notFound(id);
    if (query?.get('stream') !== 'true') return { status: 200, json: found };
    const events = this.#events.get(id);
    if (events === undefined) return vllmErrorBody(400, 'BadRequestError', `Unknown response_id: ${id}`);
    const after = Number(query.get('starting_after') ?? '-1');
    return { status: 200, sse: events.slice(Number.isInteger(after) ? after + 1 : 0) };
  }

  /** `POST /v1/responses/{id}/cancel`: only background responses can be; ours are all done. */
  cancel(id: string): VllmAnswer {
    if (!this.#stored.has(id)) return notFound(id);
    return vllmErrorBody(400, 'invalid_request_error', 'Cannot cancel a synchronous response.');
  }
}

function notFound(id: string): VllmAnswer {
  return {
    status: 404,
    json: {
      object: 'error',
      message: `Response with id '${id}' not found.`,
      type: 'invalid_request_error',
      param: 'response_id',
      code: 404,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Pooling and tokenizer routes

function overlap(query: string, doc: string): number {
  const q = new Set(words(query.toLowerCase()));
  const d = words(doc.toLowerCase());
  if (d.length === 0 || q.size === 0) return 0;
  const hits = d.filter((w) => q.has(w)).length;
  return Math.round((hits / d.length) * 1e6) / 1e6;
}

function docText(doc: unknown): string {
  return typeof doc === 'string'
    ? doc
    : typeof doc === 'object' && doc !== null && typeof (doc as { text?: unknown }).text === 'string'
      ? (doc as { text: string }).text
      : '';
}

/** `POST /v1/rerank` (vLLM's Jina/Cohere shape): results by relevance, best first. */
export function rerank(body: Body, model: string): VllmAnswer {
  if (typeof body.query !== 'string' || !Array.isArray(body.documents))
    return vllmErrorBody(400, 'BadRequestError', "'query' and 'documents' are required");
  const query = body.query;
  const docs = body.documents as unknown[];
  const results = docs.map((doc, index) => ({
    index,
    document: { text: docText(doc) },
    relevance_score: overlap(query, docText(doc)),
  }));
  results.sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
  const topN = typeof body.top_n === 'number' && body.top_n > 0 ? body.top_n : results.length;
  const tokens =
    words(query).length * docs.length + docs.reduce<number>((n, d) => n + words(docText(d)).length, 0);
  return {
    status: 200,
    json: {
      id: `rerank-${hex(12)}`,
      model,
      usage: { total_tokens: tokens },
      results: results.slice(0, topN),
    },
  };
}

/** `POST /v1/score`: `text_1` against each `text_2`. */
export function score(body: Body, model: string): VllmAnswer {
  const left = Array.isArray(body.text_1)
    ? body.text_1.map(docText)
    : typeof body.text_1 === 'string'
      ? [body.text_1]
      : undefined;
  const right = Array.isArray(body.text_2)
    ? body.text_2.map(docText)
    : typeof body.text_2 === 'string'
      ? [body.text_2]
      : undefined;
  if (left === undefined || right === undefined)
    return vllmErrorBody(400, 'BadRequestError', "'text_1' and 'text_2' are required");
  const pairs = right.map((r, i) => [left.length === 1 ? (left[0] as string) : (left[i] ?? ''), r] as const);
  const tokens = pairs.reduce((n, [a, b]) => n + words(a).length + words(b).length, 0);
  return {
    status: 200,
    json: {
      id: `score-${hex(12)}`,
      object: 'list',
      created: Math.floor(Date.now() / 1000),
      model,
      data: pairs.map(([a, b], index) => ({ index, object: 'score', score: overlap(a, b) })),
      usage: {
        prompt_tokens: tokens,
        total_tokens: tokens,
        completion_tokens: 0,
        prompt_tokens_details: null,
      },
    },
  };
}

/** Word "tokenizer": ids from a bounded vocabulary, so /detokenize can invert /tokenize. */
export class WordTokenizer {
  readonly #ids = new Map<string, number>();
  readonly #words: string[] = [];

  #id(word: string): number {
    let id = this.#ids.get(word);
    if (id === undefined) {
      if (this.#words.length >= 100_000) return 0;
      id = this.#words.length + 1000;
      this.#words.push(word);
      this.#ids.set(word, id);
    }
    return id;
  }

  tokenize(body: Body, maxModelLen: number): VllmAnswer {
    let text: string;
    if (typeof body.prompt === 'string') text = body.prompt;
    else if (Array.isArray(body.messages))
      text = (body.messages as Array<{ content?: unknown }>)
        .map((m) => `<|im_start|> ${textOf(m.content)} <|im_end|>`)
        .join(' ');
    else return vllmErrorBody(400, 'BadRequestError', "'prompt' or 'messages' is required");
    const tokens = words(text).map((w) => this.#id(w));
    return {
      status: 200,
      json: { count: tokens.length, max_model_len: maxModelLen, tokens, token_strs: null },
    };
  }

  detokenize(body: Body): VllmAnswer {
    if (!Array.isArray(body.tokens)) return vllmErrorBody(400, 'BadRequestError', "'tokens' is required");
    const prompt = (body.tokens as unknown[])
      .map((id) => (typeof id === 'number' ? (this.#words[id - 1000] ?? '') : ''))
      .join(' ');
    return { status: 200, json: { prompt } };
  }
}
