/*
 * Token usage read from a response without parsing the whole body: OpenAI-compatible servers put
 * `"usage":{"prompt_tokens":N,"completion_tokens":M,...}` in the JSON answer and in the last SSE
 * event. Searching bytes for the marker costs far less than JSON.parse of a long completion.
 */

/** Token counts of one answer. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

const MARKER = Buffer.from('"usage":{');
const PROMPT = /"(?:prompt|input)_tokens":\s*(\d+)/;
const COMPLETION = /"(?:completion|output)_tokens":\s*(\d+)/;
/** The Responses API's usage nests `input_tokens_details: {…}` before `output_tokens`. */
const NESTED = /^"usage":\{"?[^{}]*(?:\{[^{}]*\}[^{}]*)*\}/;

/** Usage in a complete JSON body (or a complete SSE event), if present. */
export function usageFrom(buf: Buffer): Usage | undefined {
  const at = buf.lastIndexOf(MARKER);
  if (at < 0) return undefined;
  const end = buf.indexOf('}', at);
  if (end < 0) return undefined;
  let text = buf.toString('latin1', at, end + 1);
  if (!COMPLETION.test(text) && buf[end + 1] !== 0x7d)
    text = NESTED.exec(buf.toString('latin1', at, Math.min(buf.length, at + 1024)))?.[0] ?? text;
  const prompt = PROMPT.exec(text);
  const completion = COMPLETION.exec(text);
  if (prompt === null && completion === null) return undefined;
  return { promptTokens: Number(prompt?.[1] ?? 0), completionTokens: Number(completion?.[1] ?? 0) };
}

/**
 * Watches a stream's chunks for the usage event. The event may be split across chunks, so the
 * tail after a marker is kept until its object closes.
 */
export class StreamUsageScanner {
  #pending: Buffer | undefined;
  usage: Usage | undefined;

  push(chunk: Buffer): void {
    if (this.#pending !== undefined) {
      const joined = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
      this.#scan(joined);
      return;
    }
    if (chunk.indexOf(MARKER) >= 0) this.#scan(chunk);
  }

  #scan(buf: Buffer): void {
    const at = buf.lastIndexOf(MARKER);
    if (at < 0) return;
    const found = usageFrom(buf.subarray(at));
    if (found !== undefined && buf.indexOf('}', at) >= 0) this.usage = found;
    else if (buf.length - at < 4096) this.#pending = Buffer.from(buf.subarray(at));
  }
}
