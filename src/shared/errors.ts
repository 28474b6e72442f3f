/*
 * One error hierarchy for the whole project.
 *
 * Every error the tool raises on purpose is an {@link AppError} with a stable `code`
 * (`GW_RATE_LIMITED`, `RUNPOD_NO_CAPACITY`, …). Callers branch on `code`, never on message
 * text. The gateway renders any AppError as the OpenAI envelope (see gateway/errors.ts);
 * the CLI maps codes to exit codes in one place (cli/exit-codes.ts).
 *
 * @example
 *   throw new AppError('GW_UPSTREAM_TIMEOUT', 'upstream did not answer within 120 s', { status: 504 });
 */

/** Options of an {@link AppError}. */
export interface AppErrorOptions {
  /** HTTP status when rendered by the gateway (default 500). */
  status?: number;
  /** OpenAI error `type` (default derived from status). */
  type?: string;
  /** OpenAI error `param`: the request field at fault, dotted/indexed (`messages[0].content`). */
  param?: string | null;
  /** OpenAI error `code` as clients see it (default: the lower-cased code without its prefix). */
  apiCode?: string;
  /** What the user can do about it (printed by the CLI after the message). */
  hint?: string;
  cause?: unknown;
  /** Extra response headers (e.g. Retry-After). */
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly apiCode: string;
  readonly hint: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = options.status ?? 500;
    this.type = options.type ?? typeForStatus(this.status);
    this.param = options.param ?? null;
    this.apiCode = options.apiCode ?? code.replace(/^[A-Z]+_/, '').toLowerCase();
    this.hint = options.hint;
    this.headers = options.headers;
  }
}

/** OpenAI's error `type` for a status, as its API and vLLM use them. */
export function typeForStatus(status: number): string {
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

/** A message safe to show a user: never a stack, never the raw object. */
export function describeError(value: unknown): string {
  if (value instanceof Error) return value.message;
  return String(value);
}
