import { z } from 'zod';

/*
 * OpenAI request shapes, permissive where OpenAI and vLLM are (unknown fields pass through
 * untouched: vLLM takes many extras such as `top_k`, `min_p`, `guided_json`), strict where a
 * wrong type would only fail later upstream, and bounded where size means cost.
 */

/** Request limits from the configuration. */
export interface RequestLimits {
  maxMessages: number;
  maxTokens: number;
  maxN: number;
}

const nullableNumber = z.number().nullable().optional();
const tokenCount = (max: number) => z.number().int().min(1).max(max).nullable().optional();

const contentPart = z.looseObject({ type: z.string().min(1), text: z.string().optional() });
const messageContent = z.union([z.string(), z.array(contentPart), z.null()]);

const toolCall = z.looseObject({
  id: z.string().optional(),
  type: z.string().optional(),
  function: z.looseObject({ name: z.string(), arguments: z.string().optional() }).optional(),
});

const message = z.looseObject({
  role: z.enum(['system', 'user', 'assistant', 'tool', 'developer', 'function']),
  content: messageContent.optional(),
  name: z.string().optional(),
  tool_calls: z.array(toolCall).nullable().optional(),
  tool_call_id: z.string().optional(),
});

const tool = z.looseObject({
  type: z.string().min(1),
  function: z
    .looseObject({
      name: z.string().min(1),
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});

const stop = z
  .union([z.string(), z.array(z.string())])
  .nullable()
  .optional();
const common = (limits: RequestLimits) => ({
  model: z.string().min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  temperature: z.number().min(0).nullable().optional(),
  top_p: nullableNumber,
  n: z.number().int().min(1).max(limits.maxN).nullable().optional(),
  max_tokens: tokenCount(limits.maxTokens),
  stop,
  seed: z.number().int().nullable().optional(),
  presence_penalty: nullableNumber,
  frequency_penalty: nullableNumber,
  logit_bias: z.record(z.string(), z.number()).nullable().optional(),
  user: z.string().nullable().optional(),
});

export function chatSchema(limits: RequestLimits) {
  return z.looseObject({
    ...common(limits),
    messages: z.array(message).min(1).max(limits.maxMessages),
    max_completion_tokens: tokenCount(limits.maxTokens),
    tools: z.array(tool).nullable().optional(),
    tool_choice: z
      .union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })])
      .nullable()
      .optional(),
    parallel_tool_calls: z.boolean().nullable().optional(),
    response_format: z
      .looseObject({ type: z.string().min(1) })
      .nullable()
      .optional(),
    logprobs: z.boolean().nullable().optional(),
    top_logprobs: z.number().int().min(0).nullable().optional(),
  });
}

const tokenArray = z.array(z.number().int());

export function completionSchema(limits: RequestLimits) {
  return z.looseObject({
    ...common(limits),
    prompt: z.union([z.string(), z.array(z.string()).min(1), tokenArray.min(1), z.array(tokenArray).min(1)]),
    suffix: z.string().nullable().optional(),
    echo: z.boolean().nullable().optional(),
    best_of: z.number().int().min(1).max(limits.maxN).nullable().optional(),
    logprobs: z.number().int().min(0).nullable().optional(),
  });
}

export function embeddingSchema() {
  return z.looseObject({
    model: z.string().min(1),
    input: z.union([
      z.string(),
      z.array(z.string()).min(1).max(2048),
      tokenArray.min(1),
      z.array(tokenArray).min(1).max(2048),
    ]),
    encoding_format: z.enum(['float', 'base64']).nullable().optional(),
    dimensions: z.number().int().min(1).nullable().optional(),
    user: z.string().nullable().optional(),
  });
}

/** Optional `model`: vLLM's pooling, tokenizer and Responses routes default to the served model. */
const optionalModel = z.string().min(1).nullable().optional();

/**
 * `POST /v1/responses` (OpenAI's Responses API as vLLM serves it): `input` is a string or a list
 * of items (messages, function calls and their outputs, …), checked loosely; the rest passes on.
 */
export function responsesSchema(limits: RequestLimits) {
  const item = z.looseObject({ type: z.string().optional(), role: z.string().optional() });
  return z.looseObject({
    model: optionalModel,
    input: z.union([z.string(), z.array(item).max(limits.maxMessages)]),
    instructions: z.string().nullable().optional(),
    stream: z.boolean().nullable().optional(),
    store: z.boolean().nullable().optional(),
    background: z.boolean().nullable().optional(),
    previous_response_id: z.string().nullable().optional(),
    max_output_tokens: tokenCount(limits.maxTokens),
    temperature: z.number().min(0).nullable().optional(),
    top_p: nullableNumber,
    tools: z
      .array(z.looseObject({ type: z.string().min(1) }))
      .nullable()
      .optional(),
    user: z.string().nullable().optional(),
  });
}

/** `POST /v1/rerank` (Jina/Cohere shape, as vLLM serves it; Continue uses it for context). */
export function rerankSchema() {
  return z.looseObject({
    model: optionalModel,
    query: z.union([z.string(), z.looseObject({})]),
    documents: z.union([
      z
        .array(z.union([z.string(), z.looseObject({})]))
        .min(1)
        .max(4096),
      z.looseObject({}),
    ]),
    top_n: z.number().int().min(0).nullable().optional(),
  });
}

/** `POST /v1/score`: vLLM's pairs (`text_1` with `text_2`; newer releases also `queries`/`documents`). */
export function scoreSchema() {
  return z.looseObject({ model: optionalModel });
}

/** `POST /tokenize`: a completion `prompt` or chat `messages`. */
export function tokenizeSchema(limits: RequestLimits) {
  return z
    .looseObject({
      model: optionalModel,
      prompt: z.string().optional(),
      messages: z.array(message).min(1).max(limits.maxMessages).optional(),
    })
    .refine((b) => b.prompt !== undefined || b.messages !== undefined, {
      message: "send 'prompt' or 'messages'",
      path: ['prompt'],
    });
}

/** `POST /detokenize`: token ids back to text. */
export function detokenizeSchema() {
  return z.looseObject({ model: optionalModel, tokens: tokenArray.max(1_000_000) });
}
