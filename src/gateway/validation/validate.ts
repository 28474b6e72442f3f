import type { z } from 'zod';
import type { AppError } from '../../shared/errors.js';
import { gatewayError } from '../errors.js';
import { type ContentPolicy, strip, violates } from './content-policy.js';
import type { ValidatedRoute } from '../routes/route-table.js';
import {
  chatSchema,
  completionSchema,
  detokenizeSchema,
  embeddingSchema,
  rerankSchema,
  responsesSchema,
  scoreSchema,
  tokenizeSchema,
  type RequestLimits,
} from './schemas.js';

export type ApiRoute = ValidatedRoute;

export interface ValidatorOptions extends RequestLimits {
  /**
   * Bytes (UTF-8) per message content / prompt / input string; null (the default): no per-message
   * cap, the model's context decides (vLLM's 400 becomes `context_length_exceeded`).
   */
  maxContentLength: number | null;
  contentPolicy: ContentPolicy;
}

export interface Validated {
  body: Record<string, unknown>;
  /** True when the content policy changed the body (it must be re-serialised). */
  modified: boolean;
  /** Absent where the route lets vLLM default to its served model (Responses, rerank, …). */
  model: string | undefined;
  stream: boolean;
}

/**
 * Validates a parsed JSON body for an OpenAI route and returns it, or throws a 400 AppError
 * naming the field (`param` as OpenAI writes it: `messages[0].content`).
 *
 * @example
 *   const validate = createValidator({ maxMessages: 2048, maxTokens: 131072, maxN: 16, maxContentLength: 50_000, contentPolicy: 'off' });
 *   validate('chat', { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
 */
export function createValidator(options: ValidatorOptions): (route: ApiRoute, body: unknown) => Validated {
  const schemas: Record<ApiRoute, z.ZodType> = {
    chat: chatSchema(options),
    completions: completionSchema(options),
    embeddings: embeddingSchema(),
    responses: responsesSchema(options),
    rerank: rerankSchema(),
    score: scoreSchema(),
    tokenize: tokenizeSchema(options),
    detokenize: detokenizeSchema(),
  };
  return (route, body) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw gatewayError('GW_INVALID_REQUEST', 'the request body must be a JSON object');
    }
    const result = schemas[route].safeParse(body);
    if (!result.success) throw fromZod(result.error);
    const record = body as Record<string, unknown>;
    const modified = applyContentRules(route, record, options);
    return {
      body: record,
      modified,
      model: typeof record.model === 'string' ? record.model : undefined,
      stream: record.stream === true,
    };
  };
}

function fromZod(error: z.ZodError): AppError {
  const issue = error.issues[0];
  if (issue === undefined) return gatewayError('GW_INVALID_REQUEST', 'invalid request');
  const param = formatPath(issue.path);
  // zod 4 leaves `issue.input` out unless asked to, so "missing" is read from its message.
  const missing = issue.code === 'invalid_type' && / received undefined$/.test(issue.message);
  const what = missing ? 'is required' : `is invalid: ${issue.message}`;
  return gatewayError('GW_INVALID_REQUEST', `'${param}' ${what}`, { param });
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path)
    out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  return out === '' ? '(body)' : out;
}

/** Size limits and the content policy, over every text the model will read. Returns `modified`. */
function applyContentRules(
  route: ApiRoute,
  body: Record<string, unknown>,
  options: ValidatorOptions,
): boolean {
  let modified = false;
  const max = options.maxContentLength;
  if (max === null && options.contentPolicy === 'off') return false;
  const check = (text: string, param: string): string => {
    if (max !== null && text.length * 3 > max && Buffer.byteLength(text) > max) {
      throw gatewayError(
        'GW_CONTENT_TOO_LONG',
        `'${param}' is longer than ${options.maxContentLength} bytes (max_content_length)`,
        { param },
      );
    }
    if (options.contentPolicy === 'off' || !violates(text)) return text;
    if (options.contentPolicy === 'reject') {
      throw gatewayError(
        'GW_CONTENT_POLICY',
        `'${param}' contains a <script> tag or a javascript: URL, refused by content_policy "reject"`,
        { param },
      );
    }
    modified = true;
    return strip(text);
  };
  if (route === 'chat') {
    const messages = body.messages as Array<Record<string, unknown>>;
    messages.forEach((message, i) => {
      const content = message.content;
      if (typeof content === 'string') message.content = check(content, `messages[${i}].content`);
      else if (Array.isArray(content)) {
        let total = 0;
        content.forEach((part: Record<string, unknown>, j: number) => {
          if (typeof part.text !== 'string') return;
          part.text = check(part.text, `messages[${i}].content[${j}].text`);
          total += Buffer.byteLength(part.text as string);
        });
        if (max !== null && total > max) {
          throw gatewayError(
            'GW_CONTENT_TOO_LONG',
            `'messages[${i}].content' is longer than ${options.maxContentLength} bytes (max_content_length)`,
            { param: `messages[${i}].content` },
          );
        }
      }
    });
  } else if (route === 'completions') {
    if (typeof body.prompt === 'string') body.prompt = check(body.prompt, 'prompt');
    else if (Array.isArray(body.prompt))
      body.prompt = body.prompt.map((p: unknown, i: number) =>
        typeof p === 'string' ? check(p, `prompt[${i}]`) : p,
      );
    if (typeof body.suffix === 'string') body.suffix = check(body.suffix, 'suffix');
  } else if (route === 'responses') {
    if (typeof body.input === 'string') body.input = check(body.input, 'input');
    else if (Array.isArray(body.input)) {
      body.input.forEach((item: Record<string, unknown>, i: number) => {
        if (typeof item.content === 'string') item.content = check(item.content, `input[${i}].content`);
        else if (Array.isArray(item.content)) {
          item.content.forEach((part: Record<string, unknown>, j: number) => {
            if (typeof part.text === 'string') part.text = check(part.text, `input[${i}].content[${j}].text`);
          });
        }
      });
    }
  } else if (route !== 'embeddings') {
    return modified;
  } else if (typeof body.input === 'string') {
    body.input = check(body.input, 'input');
  } else if (Array.isArray(body.input)) {
    body.input = body.input.map((p: unknown, i: number) =>
      typeof p === 'string' ? check(p, `input[${i}]`) : p,
    );
  }
  return modified;
}
