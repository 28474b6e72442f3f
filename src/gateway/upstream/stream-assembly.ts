import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { gatewayError, renderError } from '../errors.js';

/*
 * Non-streamed requests that travel streamed.
 *
 * RunPod's pod URL goes through Cloudflare, which ends a request with 524 after 100 s without a
 * response byte (docs/runpod-contract.md). A streamed answer keeps bytes flowing; a non-streamed one sends
 * nothing until vLLM has generated all of it, so a long answer (2,000 tokens at 20 tokens/s, or
 * a long queue on a busy pod) dies at the proxy while the GPU keeps working. For routes behind
 * such a proxy the gateway asks the pod for a stream (with `stream_options.include_usage`) and
 * gives the client the one JSON answer it asked for, assembled from the chunks.
 *
 * Chat completions are assembled by the official `openai` package's own accumulator
 * (`ChatCompletionStream`, fed the chunks as JSON lines, its `fromReadableStream` format): content, tool calls
 * (arguments joined per index), refusal, logprobs, finish reason, usage, `id`, `model`,
 * `created`, `system_fingerprint` and any extra fields the chunks carry (vLLM's `stop_reason`).
 * The package has no assembler for `/v1/completions`; the small one here follows the same rules
 * (text joined per choice index, logprobs arrays concatenated, the last non-null finish reason,
 * usage from the usage chunk).
 *
 * @example
 *   const travel = streamedTravel('chat', validated.body, validated.stream, route.streamNonStreaming);
 *   // send travel.body upstream; on a 200 event stream:
 *   const { status, body } = await travel.assemble(sseBytes);
 */

/** How one non-streamed request travels: the body sent upstream and how its stream becomes the answer. */
export interface StreamedTravel {
  /** The request body sent upstream: the client's, with `stream: true` and usage asked for. */
  body: Buffer;
  /** The complete SSE bytes → the non-streamed answer (or an error envelope with its status). */
  assemble(sse: Buffer): Promise<{ status: number; body: Buffer }>;
}

/**
 * Whether (and how) a request travels streamed: only non-streamed chat and completions on a
 * route that needs it, and never with options vLLM refuses in a stream (beam search,
 * `best_of` above 1, `prompt_logprobs`): those go as asked.
 */
export function streamedTravel(
  api: string,
  body: Record<string, unknown>,
  stream: boolean,
  routeNeedsIt: boolean | undefined,
): StreamedTravel | undefined {
  if (routeNeedsIt !== true || stream || (api !== 'chat' && api !== 'completions')) return undefined;
  if (
    body.use_beam_search === true ||
    (typeof body.best_of === 'number' && body.best_of > 1) ||
    (body.prompt_logprobs !== undefined && body.prompt_logprobs !== null)
  )
    return undefined;
  const upstream = { ...body, stream: true, stream_options: { include_usage: true } };
  return {
    body: Buffer.from(JSON.stringify(upstream)),
    assemble: (sse) => assembleStream(api, sse),
  };
}

const ERROR_PAYLOAD = /^\{\s*"error"\s*:/;

/** Assembles a complete SSE answer; never throws (a broken stream is a 502 envelope). */
export async function assembleStream(
  api: 'chat' | 'completions',
  sse: Buffer,
): Promise<{ status: number; body: Buffer }> {
  const { payloads, done } = dataPayloads(sse);
  for (const payload of payloads) {
    // vLLM reports a failure inside a started stream as one `data: {"error": …}` event.
    if (ERROR_PAYLOAD.test(payload)) return streamError(payload);
  }
  if (!done) return badStream('the model server ended the stream before `data: [DONE]`');
  if (payloads.length === 0) return badStream('the model server sent an empty stream');
  try {
    const answer = api === 'chat' ? await assembleChat(payloads) : assembleCompletion(payloads);
    return { status: 200, body: Buffer.from(JSON.stringify(answer)) };
  } catch (err) {
    return badStream(
      `the model server's stream could not be assembled (${(err as Error).message.split('\n')[0]?.slice(0, 200)})`,
    );
  }
}

/** The `data:` payloads of an SSE body, per the WHATWG event-stream rules vLLM's output needs. */
function dataPayloads(sse: Buffer): { payloads: string[]; done: boolean } {
  const text = sse.toString('utf8');
  const payloads: string[] = [];
  let data: string[] = [];
  let done = false;
  const flush = (): void => {
    if (data.length === 0) return;
    const payload = data.join('\n');
    data = [];
    if (payload === '[DONE]') done = true;
    else if (!done) payloads.push(payload);
  };
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') flush();
    else if (line.startsWith('data:')) data.push(line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5));
    // Comments (`:`), `event:`, `id:`, `retry:` carry nothing the answer needs.
  }
  flush();
  return { payloads, done };
}

/**
 * openai's `ChatCompletionStream.fromReadableStream(…)` + `finalChatCompletion()` runs the same
 * method behind a `setTimeout(0)` and an event-stream wrapper (≥ 1 ms more per answer); its
 * subclass hook `_fromReadableStream` runs the accumulator and returns the final completion.
 */
class ChatAssembler extends ChatCompletionStream {
  constructor() {
    super(null);
  }
  assemble(source: ReadableStream<Uint8Array>): Promise<ChatCompletion> {
    return this._fromReadableStream(source);
  }
}

/** The chat answer, by openai's own accumulator (the same code its SDK uses for `.stream()`). */
async function assembleChat(payloads: string[]): Promise<Record<string, unknown>> {
  // The accumulator reads JSON lines (its `toReadableStream` format). vLLM's payloads are
  // single-line JSON, so the lines are the payloads themselves, not re-serialised.
  const lines = Buffer.from(payloads.join('\n'));
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(lines);
      controller.close();
    },
  });
  const completion = (await new ChatAssembler().assemble(source)) as unknown as {
    choices: Array<{ message: Record<string, unknown> }>;
  };
  // `parsed` is the SDK's structured-output helper, not part of the API's answer.
  for (const choice of completion.choices) if (choice.message.parsed === null) delete choice.message.parsed;
  if (payloads.some((p) => p.includes('"reasoning'))) joinReasoning(payloads, completion.choices);
  return completion;
}

/**
 * vLLM's reasoning parsers stream the thinking as `delta.reasoning_content` (newer: `reasoning`).
 * openai's accumulator copies unknown delta fields (the last piece wins); they are text, joined
 * here per choice like `content`.
 */
function joinReasoning(payloads: string[], choices: Array<{ message: Record<string, unknown> }>): void {
  const joined = new Map<number, Record<string, string>>();
  for (const payload of payloads) {
    const chunk = JSON.parse(payload) as {
      choices?: Array<{ index?: number; delta?: Record<string, unknown> }>;
    };
    for (const c of chunk.choices ?? []) {
      for (const field of ['reasoning_content', 'reasoning']) {
        const piece = c.delta?.[field];
        if (typeof piece !== 'string' || typeof c.index !== 'number') continue;
        const texts = joined.get(c.index) ?? {};
        texts[field] = (texts[field] ?? '') + piece;
        joined.set(c.index, texts);
      }
    }
  }
  for (const [index, texts] of joined) {
    const message = choices[index]?.message;
    if (message !== undefined) Object.assign(message, texts);
  }
}

interface CompletionChoice {
  index: number;
  text: string;
  logprobs: {
    text_offset: number[];
    token_logprobs: Array<number | null>;
    tokens: string[];
    top_logprobs: Array<Record<string, number> | null>;
  } | null;
  finish_reason: string | null;
  [extra: string]: unknown;
}

/** `/v1/completions` (openai ships no assembler for it): text per index, logprobs concatenated. */
function assembleCompletion(payloads: string[]): Record<string, unknown> {
  const head: Record<string, unknown> = {};
  const choices: CompletionChoice[] = [];
  let usage: unknown;
  for (const payload of payloads) {
    const chunk = JSON.parse(payload) as Record<string, unknown>;
    const { choices: chunkChoices, usage: chunkUsage, object: _object, ...rest } = chunk;
    for (const [key, value] of Object.entries(rest))
      if (value !== undefined && value !== null) head[key] = value;
    if (chunkUsage !== undefined && chunkUsage !== null) usage = chunkUsage;
    if (!Array.isArray(chunkChoices)) continue;
    for (const raw of chunkChoices as Array<Record<string, unknown>>) {
      const { index, text, logprobs, finish_reason: finish, ...other } = raw;
      if (typeof index !== 'number') throw new Error('a choice without index');
      const choice = (choices[index] ??= { index, text: '', logprobs: null, finish_reason: null });
      if (typeof text === 'string') choice.text += text;
      if (typeof finish === 'string') choice.finish_reason = finish;
      for (const [key, value] of Object.entries(other))
        if (value !== undefined && (value !== null || !(key in choice))) choice[key] = value;
      if (logprobs !== null && logprobs !== undefined) {
        const lp = logprobs as NonNullable<CompletionChoice['logprobs']>;
        if (choice.logprobs === null)
          choice.logprobs = { text_offset: [], token_logprobs: [], tokens: [], top_logprobs: [] };
        choice.logprobs.text_offset.push(...(lp.text_offset ?? []));
        choice.logprobs.token_logprobs.push(...(lp.token_logprobs ?? []));
        choice.logprobs.tokens.push(...(lp.tokens ?? []));
        choice.logprobs.top_logprobs.push(...(lp.top_logprobs ?? []));
      }
    }
  }
  const dense = choices.filter((c) => c !== undefined);
  for (const choice of dense)
    if (choice.finish_reason === null) throw new Error(`missing finish_reason for choice ${choice.index}`);
  const { id, created, model, ...others } = head;
  return {
    id,
    object: 'text_completion',
    created,
    model,
    ...others,
    choices: dense,
    ...(usage === undefined ? {} : { usage }),
  };
}

/** An error event inside the stream → that error with its status (vLLM's `code`), or 502. */
function streamError(payload: string): { status: number; body: Buffer } {
  let inner: Record<string, unknown> = {};
  try {
    const outer = (JSON.parse(payload) as { error?: unknown }).error;
    inner =
      typeof outer === 'object' && outer !== null
        ? (outer as Record<string, unknown>)
        : { message: String(outer) };
    // Some vLLM versions nest the ErrorResponse once more.
    if (typeof inner.error === 'object' && inner.error !== null)
      inner = inner.error as Record<string, unknown>;
  } catch {
    return badStream('the model server sent a malformed error event');
  }
  const code = inner.code;
  const status = typeof code === 'number' && code >= 400 && code <= 599 ? code : 502;
  const error = {
    message: typeof inner.message === 'string' ? inner.message : 'the model server failed while generating',
    type: typeof inner.type === 'string' ? inner.type : 'server_error',
    param: typeof inner.param === 'string' ? inner.param : null,
    code: typeof code === 'string' ? code : null,
  };
  return { status, body: Buffer.from(JSON.stringify({ error })) };
}

function badStream(message: string): { status: number; body: Buffer } {
  return {
    status: 502,
    body: Buffer.from(JSON.stringify(renderError(gatewayError('GW_UPSTREAM_BAD_RESPONSE', message)))),
  };
}
