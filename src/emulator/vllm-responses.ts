import {
  type Body,
  contextCheck,
  hex,
  requestedMaxTokens,
  textOf,
  type VllmAnswer,
  vllmErrorBody,
  words,
} from './vllm-routes.js';

/*
 * The stand-in's Responses API (vllm/entrypoints/openai/responses/api_router.py: create,
 * retrieve, cancel; SSE events as `event: <type>` + `data: {…}`), stored in memory and bounded.
 */
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
