import { type ErrorCode, errorCodeEntry, type OpenAiErrorType } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

/*
 * One error hierarchy for the whole project.
 *
 * Every error the tool raises on purpose is an {@link AppError} with a stable `code` from the
 * registry (`shared/error-codes.ts`: `GW_RATE_LIMITED`, `RUNPOD_NO_CAPACITY`, …), which also
 * gives its HTTP status, OpenAI type and code, and CLI exit code. Callers branch on `code`,
 * never on message text. The gateway renders any AppError as the OpenAI envelope (see
 * gateway/errors.ts); the CLI's exit code is the registry's (cli/exit-codes.ts).
 *
 * @example
 *   throw new AppError('GW_UPSTREAM_TIMEOUT', 'upstream did not answer within 120 s'); // 504 upstream_timeout
 */

/** Options of an {@link AppError}. */
export interface AppErrorOptions {
  /** OpenAI error `param`: the request field at fault, dotted/indexed (`messages[0].content`). */
  param?: string | null;
  /** What the user can do about it (printed by the CLI after the message). */
  hint?: string;
  cause?: unknown;
  /** Extra response headers (e.g. Retry-After). */
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly apiCode: string;
  readonly hint: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    const entry = errorCodeEntry(code);
    // A code with no HTTP row is not meant for clients; if one is rendered anyway, it is a 500.
    this.status = entry.http ?? 500;
    this.type = entry.openaiType ?? typeForStatus(this.status);
    this.param = options.param ?? null;
    this.apiCode = entry.openaiCode ?? code.replace(/^[A-Z]+_/, '').toLowerCase();
    this.hint = options.hint;
    this.headers = options.headers;
  }
}

/** OpenAI's error `type` for a status, as its API and vLLM use them. */
export function typeForStatus(status: number): OpenAiErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}
