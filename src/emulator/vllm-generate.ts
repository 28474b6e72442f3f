import { randomBytes } from 'node:crypto';

/**
 * Deterministic "generation" for the vLLM stand-in: the same request yields the same text, so
 * cache and replay tests can compare answers. Shapes follow vLLM's OpenAI server.
 */
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
  finishReason: 'stop' | 'length';
  /** The SSE payloads in order (without `data: [DONE]`). */
  events(): object[];
}

const FILLER = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog', 'again', 'and', 'again'];

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : ''))
      .join(' ');
  }
  return '';
}

function answerTokens(seedText: string, maxTokens: number, defaultTokens: number): { tokens: string[]; finishReason: 'stop' | 'length' } {
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
  return typeof options === 'object' && options !== null && (options as { include_usage?: unknown }).include_usage === true;
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
export function planChat(body: Record<string, unknown>, model: string, defaultTokens: number): GenerationPlan | string {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return 'messages: Field required';
  const texts = messages.map((m) => contentText((m as { content?: unknown } | null)?.content));
  const last = texts[texts.length - 1] ?? '';
  const { tokens, finishReason } = answerTokens(last, maxTokensOf(body), defaultTokens);
  const plan: GenerationPlan = {
    kind: 'chat',
    id: newId('chatcmpl'),
    created: Math.floor(Date.now() / 1000),
    model,
    stream: body.stream === true,
    includeUsage: includeUsage(body),
    tokens,
    promptTokens: texts.reduce((sum, t) => sum + words(t).length + 3, 0),
    finishReason,
    events() {
      const base = { id: plan.id, object: 'chat.completion.chunk', created: plan.created, model };
      const out: object[] = [{ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }];
      for (const token of tokens) out.push({ ...base, choices: [{ index: 0, delta: { content: token }, logprobs: null, finish_reason: null }] });
      out.push({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason, stop_reason: null }] });
      if (plan.includeUsage) out.push({ ...base, choices: [], usage: usageOf(plan) });
      return out;
    },
  };
  return plan;
}

/** `/v1/completions`, including fill-in-the-middle (`suffix`). */
export function planCompletion(body: Record<string, unknown>, model: string, defaultTokens: number): GenerationPlan | string {
  const prompt = body.prompt;
  const text = typeof prompt === 'string' ? prompt : Array.isArray(prompt) && typeof prompt[0] === 'string' ? prompt[0] : undefined;
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
    events() {
      const base = { id: plan.id, object: 'text_completion', created: plan.created, model };
      const out: object[] = tokens.map((token, i) => ({
        ...base,
        choices: [{ index: 0, text: token, logprobs: null, finish_reason: i === tokens.length - 1 ? finishReason : null, stop_reason: null }],
      }));
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
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, tool_calls: [], reasoning_content: null }, logprobs: null, finish_reason: plan.finishReason, stop_reason: null }],
      usage: usageOf(plan),
      prompt_logprobs: null,
    };
  }
  return {
    id: plan.id,
    object: 'text_completion',
    created: plan.created,
    model: plan.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: plan.finishReason, stop_reason: null, prompt_logprobs: null }],
    usage: usageOf(plan),
  };
}

/** `/v1/embeddings`: an 8-dimensional vector per input, derived from its characters. */
export function vllmEmbeddings(body: Record<string, unknown>, model: string): object | string {
  const input = body.input;
  const inputs = typeof input === 'string' ? [input] : Array.isArray(input) ? input.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))) : undefined;
  if (inputs === undefined || inputs.length === 0) return 'input: Field required';
  const data = inputs.map((text, index) => {
    const vector = Array.from({ length: 8 }, (_, d) => {
      let h = d + 1;
      for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) % 1000;
      return h / 1000;
    });
    // Like vLLM, honour encoding_format: base64 is the float32 little-endian bytes (the openai
    // SDK asks for it by default and decodes it).
    const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
    return { index, object: 'embedding', embedding };
  });
  const tokens = inputs.reduce((sum, t) => sum + words(t).length, 0);
  return { id: newId('embd'), object: 'list', created: Math.floor(Date.now() / 1000), model, data, usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0, prompt_tokens_details: null } };
}
