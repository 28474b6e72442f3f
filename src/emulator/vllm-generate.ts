import { randomBytes } from 'node:crypto';

/*
 * Deterministic "generation" for the vLLM stand-in: the same request yields the same text, so
 * cache and replay tests can compare answers. Shapes follow vLLM's OpenAI server.
 */

/** The deterministic answer to one request, before it is shaped as JSON or SSE. */
export interface GenerationPlan {
  kind: 'chat' | 'completion';
  id: string;
  created: number;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  /** Generated tokens, each with its leading space, as vLLM streams them. */
  tokens: string[];
  promptTokens: number;
  finishReason: 'stop' | 'length' | 'tool_calls';
  /** Tool calls (chat with `tools`, unless `tool_choice` is "none"), streamed after the text. */
  toolCalls: ToolCallPlan[];
  /** Chat: `top_logprobs` when `logprobs: true`; completions: `logprobs: N`; undefined: not asked. */
  logprobs: number | undefined;
  /** The SSE payloads in order (without `data: [DONE]`). */
  events(): object[];
}

export interface ToolCallPlan {
  id: string;
  name: string;
  /** The JSON arguments, streamed in a few pieces as vLLM's tool parsers do. */
  arguments: string;
}

const FILLER = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog', 'again', 'and', 'again'];

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string'
          ? (part as { text: string }).text
          : '',
      )
      .join(' ');
  }
  return '';
}

function answerTokens(
  seedText: string,
  maxTokens: number,
  defaultTokens: number,
): { tokens: string[]; finishReason: 'stop' | 'length' } {
  const echo = words(seedText).slice(0, 4);
  const natural = ['You', 'said:', ...echo, ...FILLER].slice(0, Math.max(defaultTokens, 1));
  const tokens = natural.slice(0, maxTokens).map((w, i) => (i === 0 ? w : ` ${w}`));
  return { tokens, finishReason: maxTokens < natural.length ? 'length' : 'stop' };
}

function maxTokensOf(body: Record<string, unknown>): number {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === 'number' && value > 0 ? Math.floor(value) : Number.MAX_SAFE_INTEGER;
}

function includeUsage(body: Record<string, unknown>): boolean {
  const options = body.stream_options;
  return (
    typeof options === 'object' &&
    options !== null &&
    (options as { include_usage?: unknown }).include_usage === true
  );
}

function newId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

function usageOf(plan: GenerationPlan): object {
  return {
    prompt_tokens: plan.promptTokens,
    total_tokens: plan.promptTokens + plan.tokens.length,
    completion_tokens: plan.tokens.length,
    prompt_tokens_details: null,
  };
}

/** Returns a plan, or a message for vLLM's 400 answer. */
export function planChat(
  body: Record<string, unknown>,
  model: string,
  defaultTokens: number,
): GenerationPlan | string {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return 'messages: Field required';
  const texts = messages.map((m) => contentText((m as { content?: unknown } | null)?.content));
  const last = texts[texts.length - 1] ?? '';
  const { tokens, finishReason } = answerTokens(last, maxTokensOf(body), defaultTokens);
  const toolCalls = toolCallsFor(body, last);
  const plan: GenerationPlan = {
    kind: 'chat',
    id: newId('chatcmpl'),
    created: Math.floor(Date.now() / 1000),
    model,
    stream: body.stream === true,
    includeUsage: includeUsage(body),
    tokens,
    promptTokens: texts.reduce((sum, t) => sum + words(t).length + 3, 0),
    finishReason: toolCalls.length > 0 ? 'tool_calls' : finishReason,
    toolCalls,
    logprobs:
      body.logprobs === true ? (typeof body.top_logprobs === 'number' ? body.top_logprobs : 0) : undefined,
    events() {
      const base = { id: plan.id, object: 'chat.completion.chunk', created: plan.created, model };
      const out: object[] = [
        {
          ...base,
          choices: [
            { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
          ],
        },
      ];
      tokens.forEach((token, i) => {
        const logprobs =
          plan.logprobs === undefined ? null : { content: [chatLogprob(token, i, plan.logprobs)] };
        out.push({
          ...base,
          choices: [{ index: 0, delta: { content: token }, logprobs, finish_reason: null }],
        });
      });
      toolCalls.forEach((call, index) => {
        out.push({
          ...base,
          choices: [
            {
              index: 0,
              delta: {
                tool_calls: [
                  { index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } },
                ],
              },
              logprobs: null,
              finish_reason: null,
            },
          ],
        });
        for (const piece of pieces(call.arguments, 3)) {
          out.push({
            ...base,
            choices: [
              {
                index: 0,
                delta: { tool_calls: [{ index, function: { arguments: piece } }] },
                logprobs: null,
                finish_reason: null,
              },
            ],
          });
        }
      });
      out.push({
        ...base,
        choices: [
          { index: 0, delta: {}, logprobs: null, finish_reason: plan.finishReason, stop_reason: null },
        ],
      });
      if (plan.includeUsage) out.push({ ...base, choices: [], usage: usageOf(plan) });
      return out;
    },
  };
  return plan;
}

/** `/v1/completions`, including fill-in-the-middle (`suffix`). */
export function planCompletion(
  body: Record<string, unknown>,
  model: string,
  defaultTokens: number,
): GenerationPlan | string {
  const prompt = body.prompt;
  const text =
    typeof prompt === 'string'
      ? prompt
      : Array.isArray(prompt) && typeof prompt[0] === 'string'
        ? prompt[0]
        : undefined;
  if (text === undefined) return 'prompt: Field required';
  const suffix = typeof body.suffix === 'string' ? body.suffix : '';
  const { tokens, finishReason } = answerTokens(`${text} ${suffix}`, maxTokensOf(body), defaultTokens);
  const plan: GenerationPlan = {
    kind: 'completion',
    id: newId('cmpl'),
    created: Math.floor(Date.now() / 1000),
    model,
    stream: body.stream === true,
    includeUsage: includeUsage(body),
    tokens,
    promptTokens: words(text).length + words(suffix).length,
    finishReason,
    toolCalls: [],
    logprobs: typeof body.logprobs === 'number' ? body.logprobs : undefined,
    events() {
      const base = { id: plan.id, object: 'text_completion', created: plan.created, model };
      let offset = 0;
      const out: object[] = tokens.map((token, i) => {
        const logprobs =
          plan.logprobs === undefined ? null : completionLogprobs([token], i, offset, plan.logprobs);
        offset += token.length;
        return {
          ...base,
          choices: [
            {
              index: 0,
              text: token,
              logprobs,
              finish_reason: i === tokens.length - 1 ? finishReason : null,
              stop_reason: null,
            },
          ],
        };
      });
      if (plan.includeUsage) out.push({ ...base, choices: [], usage: usageOf(plan) });
      return out;
    },
  };
  return plan;
}

/** The non-streaming answer for a plan. */
export function vllmCompletion(plan: GenerationPlan): object {
  const text = plan.tokens.join('');
  if (plan.kind === 'chat') {
    return {
      id: plan.id,
      object: 'chat.completion',
      created: plan.created,
      model: plan.model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: text,
            refusal: null,
            tool_calls: plan.toolCalls.map((c) => ({
              id: c.id,
              type: 'function',
              function: { name: c.name, arguments: c.arguments },
            })),
            reasoning_content: null,
          },
          logprobs:
            plan.logprobs === undefined
              ? null
              : { content: plan.tokens.map((token, i) => chatLogprob(token, i, plan.logprobs as number)) },
          finish_reason: plan.finishReason,
          stop_reason: null,
        },
      ],
      usage: usageOf(plan),
      prompt_logprobs: null,
    };
  }
  return {
    id: plan.id,
    object: 'text_completion',
    created: plan.created,
    model: plan.model,
    choices: [
      {
        index: 0,
        text,
        logprobs: plan.logprobs === undefined ? null : completionLogprobs(plan.tokens, 0, 0, plan.logprobs),
        finish_reason: plan.finishReason,
        stop_reason: null,
        prompt_logprobs: null,
      },
    ],
    usage: usageOf(plan),
  };
}

/** `/v1/embeddings`: an 8-dimensional vector per input, derived from its characters. */
export function vllmEmbeddings(body: Record<string, unknown>, model: string): object | string {
  const input = body.input;
  const inputs =
    typeof input === 'string'
      ? [input]
      : Array.isArray(input)
        ? input.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)))
        : undefined;
  if (inputs === undefined || inputs.length === 0) return 'input: Field required';
  const data = inputs.map((text, index) => {
    const vector = Array.from({ length: 8 }, (_, d) => {
      let h = d + 1;
      for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) % 1000;
      return h / 1000;
    });
    // Like vLLM, honour encoding_format: base64 is the float32 little-endian bytes (the openai
    // SDK asks for it by default and decodes it).
    const embedding =
      body.encoding_format === 'base64'
        ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
        : vector;
    return { index, object: 'embedding', embedding };
  });
  const tokens = inputs.reduce((sum, t) => sum + words(t).length, 0);
  return {
    id: newId('embd'),
    object: 'list',
    created: Math.floor(Date.now() / 1000),
    model,
    data,
    usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0, prompt_tokens_details: null },
  };
}

/** Tool calls for a chat with `tools`: the named one, or each offered tool (at most two). */
function toolCallsFor(body: Record<string, unknown>, lastText: string): ToolCallPlan[] {
  const tools = body.tools;
  if (!Array.isArray(tools) || tools.length === 0 || body.tool_choice === 'none') return [];
  const names = tools
    .map((t) => (t as { function?: { name?: unknown } } | null)?.function?.name)
    .filter((n): n is string => typeof n === 'string');
  const chosen = (body.tool_choice as { function?: { name?: unknown } } | undefined)?.function?.name;
  const calls = typeof chosen === 'string' ? [chosen] : names.slice(0, 2);
  return calls.map((name, i) => ({
    id: `chatcmpl-tool-${randomBytes(8).toString('hex')}`,
    name,
    arguments: JSON.stringify({ text: words(lastText).slice(0, 3).join(' '), n: i }),
  }));
}

/** Splits a string into `count` consecutive pieces (the last may be longer). */
function pieces(text: string, count: number): string[] {
  const size = Math.max(1, Math.floor(text.length / count));
  const out: string[] = [];
  for (let i = 0; i < count - 1 && i * size < text.length; i++)
    out.push(text.slice(i * size, (i + 1) * size));
  out.push(text.slice(Math.min(text.length, (count - 1) * size)));
  return out.filter((p) => p.length > 0);
}

/** A deterministic logprob for the i-th generated token. */
function logprobOf(i: number): number {
  return -Math.round((0.05 + (i % 7) * 0.11) * 1e4) / 1e4;
}

/** Chat's per-token logprob entry (OpenAI's ChatCompletionTokenLogprob). */
function chatLogprob(token: string, i: number, top: number): object {
  const lp = logprobOf(i);
  const bytes = [...Buffer.from(token, 'utf8')];
  const alternatives = Array.from({ length: top }, (_, j) => ({
    token: j === 0 ? token : `${token}~${j}`,
    logprob: lp - j,
    bytes: j === 0 ? bytes : [...Buffer.from(`${token}~${j}`, 'utf8')],
  }));
  return { token, logprob: lp, bytes, top_logprobs: alternatives };
}

/** Completions' logprobs (parallel arrays; `text_offset` counts from the start of the answer). */
function completionLogprobs(tokens: string[], first: number, offset: number, top: number): object {
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.length;
  }
  return {
    text_offset: textOffset,
    token_logprobs: tokens.map((_, k) => logprobOf(first + k)),
    tokens,
    top_logprobs: tokens.map((t, k) =>
      Object.fromEntries(
        Array.from({ length: top }, (_, j) => [j === 0 ? t : `${t}~${j}`, logprobOf(first + k) - j]),
      ),
    ),
  };
}
