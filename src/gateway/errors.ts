import { ERROR_CODES, type ErrorCodeEntry, type GatewayErrorCode } from '../shared/error-codes.js';
import { AppError } from '../shared/errors.js';

/**
 * The gateway's errors. Status, OpenAI type and code come from the one registry
 * (`shared/error-codes.ts`); everything the gateway answers with an error goes through
 * {@link renderError}, so every error body is `{"error":{"message","type","param","code"}}`.
 */
export type { GatewayErrorCode } from '../shared/error-codes.js';

/** @example throw gatewayError('GW_INVALID_REQUEST', "'messages' is required", { param: 'messages' }) */
export function gatewayError(
  code: GatewayErrorCode,
  message: string,
  extra: { param?: string | null; headers?: Record<string, string>; cause?: unknown } = {},
): AppError {
  return new AppError(code, message, extra);
}

export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string };
}

export function renderError(err: AppError): ErrorEnvelope {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.apiCode } };
}

/**
 * `x-should-retry`, which the official OpenAI SDKs obey before their own status rules (they
 * otherwise retry 408, 409, 429 and every 5xx, twice by default). `false` where a retry can only
 * repeat the failure or make the GPU do the same work again; `true` where waiting helps (the
 * registry's `retry`). By the OpenAI `code` first (so upstream errors passed through, such as
 * vLLM's `context_length_exceeded`, are covered too), then by status.
 */
const SHOULD_RETRY_BY_CODE: ReadonlyMap<string, boolean> = new Map(
  Object.values<ErrorCodeEntry>(ERROR_CODES).flatMap((e) =>
    e.openaiCode === undefined || e.retry === undefined ? [] : [[e.openaiCode, e.retry] as const],
  ),
);
const NO_RETRY_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 405, 413, 415, 422]);

/** The `x-should-retry` value for an error answer, or undefined to leave the client's rules alone. */
export function shouldRetryHeader(
  status: number,
  apiCode: string | null | undefined,
): 'true' | 'false' | undefined {
  const byCode = apiCode == null ? undefined : SHOULD_RETRY_BY_CODE.get(apiCode);
  if (byCode !== undefined) return byCode ? 'true' : 'false';
  if (status === 429) return 'true';
  return NO_RETRY_STATUSES.has(status) ? 'false' : undefined;
}

/**
 * Maps whatever reached the error handler to a gateway AppError. Fastify's own errors (body too
 * large, bad JSON, wrong media type) get our codes; anything unknown is a 500 whose message
 * reveals nothing about internals.
 */
export function toGatewayError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return gatewayError(
        'GW_REQUEST_TOO_LARGE',
        'request body is larger than the gateway accepts (max_request_size)',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return gatewayError('GW_UNSUPPORTED_MEDIA_TYPE', 'send the body as Content-Type: application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return gatewayError('GW_INVALID_JSON', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return gatewayError('GW_INVALID_REQUEST', 'Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return gatewayError('GW_INVALID_REQUEST', 'malformed URL');
    default:
      break;
  }
  if (e.statusCode === 413)
    return gatewayError(
      'GW_REQUEST_TOO_LARGE',
      'request body is larger than the gateway accepts (max_request_size)',
    );
  if (e.statusCode === 400) return gatewayError('GW_INVALID_REQUEST', 'malformed request');
  return gatewayError('GW_INTERNAL', 'internal gateway error', { cause: err });
}

/** Which security event an error status stands for (logged as `event`). */
export function securityEventFor(status: number, code: string): string | undefined {
  if (status === 429) return 'rate_limit_exceeded';
  if (status === 401) return 'auth_failed';
  if (status === 413) return 'request_too_large';
  if (status === 400 || status === 415 || status === 405) return 'invalid_input';
  if (code.startsWith('GW_UPSTREAM') || status === 502 || status === 504) return 'upstream_error';
  if (status >= 500 && !['GW_SHUTTING_DOWN', 'GW_NO_UPSTREAM', 'GW_MODEL_WAKING'].includes(code))
    return 'server_error';
  return undefined;
}
