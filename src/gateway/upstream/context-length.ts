/*
 * vLLM's "prompt too long" 400, in OpenAI's shape for it.
 *
 * The gateway has no tokenizer, and no byte count gives a certain token count (a BPE token can
 * be one byte or a hundred: bytes/4 refuses prompts vLLM accepts, bytes/1 refuses nothing), so it
 * never guesses: vLLM counts with the model's own tokenizer against its `max_model_len` and
 * answers 400; this turns that answer into OpenAI's own `context_length_exceeded` error, which
 * clients know is final (no retry; many compact the conversation and try again).
 *
 * vLLM words it several ways across versions; all name the limit:
 * - "This model's maximum context length is 8192 tokens. However, your request has 9000 input
 *   tokens. Please reduce the length of the input messages." (serving layer, 0.10+)
 * - "'max_tokens' or 'max_completion_tokens' is too large: 1000. This model's maximum context
 *   length is 8192 tokens and your request has 7500 input tokens (1000 > 8192 - 7500)."
 * - "The decoder prompt (length 9000) is longer than the maximum model length of 8192. …" (engine)
 */

import { ERROR_CODES } from '../../shared/error-codes.js';

const OPENAI_WORDING = /This model's maximum context length is (\d+) tokens/;
const ENGINE_WORDING = /maximum model length of (\d+)/;

/** The error envelope for an upstream 400 that is a context-length refusal; undefined otherwise. */
export function contextLengthError(envelope: Buffer): Buffer | undefined {
  if (envelope.length > 65_536 || envelope.indexOf('length') < 0) return undefined;
  let message: unknown;
  let param: unknown;
  try {
    const value = JSON.parse(envelope.toString('utf8')) as { error?: { message?: unknown; param?: unknown } };
    message = value.error?.message;
    param = value.error?.param;
  } catch {
    return undefined;
  }
  if (typeof message !== 'string') return undefined;
  let text: string;
  if (OPENAI_WORDING.test(message)) text = message;
  else {
    const engine = ENGINE_WORDING.exec(message);
    if (engine === null) return undefined;
    text = `This model's maximum context length is ${engine[1]} tokens. ${message}`;
  }
  const { openaiType, openaiCode } = ERROR_CODES.GW_CONTEXT_LENGTH_EXCEEDED;
  const error = {
    message: text,
    type: openaiType,
    param: typeof param === 'string' ? param : 'messages',
    code: openaiCode,
  };
  return Buffer.from(JSON.stringify({ error }));
}
