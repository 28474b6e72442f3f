import { randomBytes } from 'node:crypto';

/*
 * The stand-in's answers for vLLM's other OpenAI routes: /v1/rerank, /v1/score, /tokenize,
 * /detokenize; the context check vLLM makes before generating; and the helpers the Responses API
 * (vllm-responses.ts) and the scripted tool calls (vllm-tool-calls.ts) share.
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

export type Body = Record<string, unknown>;

export function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

export function hex(n: number): string {
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

export function textOf(content: unknown): string {
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
