import type { z } from 'zod';
import { AppError, type ErrorCode } from '../shared/errors.js';
import { ProblemSchema, type Problem } from './schemas.js';

/*
 * RunPod failures as coded {@link AppError}s. Callers branch on `code`; the message says what
 * happened in one line, the hint says what to do. Nothing here ever contains the API key: every
 * text that came from the wire goes through {@link redact} with the key before it is used.
 */

export type RunPodErrorCode = Extract<ErrorCode, `RUNPOD_${string}`>;

export interface RunPodErrorDetails {
  /** HTTP status RunPod answered, when it answered. */
  upstreamStatus?: number;
  /** The problem's `detail`, redacted. */
  detail?: string;
  /** Validation failures (`errors` of a 422), redacted. */
  errors?: string[];
  /** From `Retry-After` on a 429. */
  retryAfterMs?: number;
  /** "GET /v2/pods/{id}": which call failed (no query, no key). */
  operation?: string;
  hint?: string;
  cause?: unknown;
}

export class RunPodError extends AppError {
  declare readonly code: RunPodErrorCode;
  readonly upstreamStatus: number | undefined;
  readonly detail: string | undefined;
  readonly errors: string[] | undefined;
  readonly retryAfterMs: number | undefined;
  readonly operation: string | undefined;

  constructor(code: RunPodErrorCode, message: string, details: RunPodErrorDetails = {}) {
    // Status and exit code are the registry's (shared/error-codes.ts): the gateway never talks
    // to RunPod, so one of these rendered over HTTP is an upstream failure (502/503), never 4xx.
    super(code, message, {
      ...(details.hint === undefined ? {} : { hint: details.hint }),
      ...(details.cause === undefined ? {} : { cause: details.cause }),
    });
    this.name = 'RunPodError';
    this.upstreamStatus = details.upstreamStatus;
    this.detail = details.detail;
    this.errors = details.errors;
    this.retryAfterMs = details.retryAfterMs;
    this.operation = details.operation;
  }
}

export function isRunPodError(value: unknown, code?: RunPodErrorCode): value is RunPodError {
  return value instanceof RunPodError && (code === undefined || value.code === code);
}

/**
 * The observed detail of a capacity failure (docs/runpod-contract.md, Errors): "There are no longer any instances
 * available with the requested specifications. Please refresh and try again." RunPod gives no
 * machine-readable code for it, so the text is all we have; the other phrases cover rewordings.
 */
const NO_CAPACITY =
  /no longer any instances available|no instances? (are )?available|not enough (free )?(gpus|capacity)|insufficient capacity|out of capacity/i;

export function isNoCapacityDetail(detail: string): boolean {
  return NO_CAPACITY.test(detail);
}

const MAX_DETAIL = 300;

/** Removes every occurrence of the secrets from a text, and caps its length. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  out = out.replace(/Bearer\s+[^\s"',]+/gi, 'Bearer [redacted]');
  return out.length > MAX_DETAIL ? `${out.slice(0, MAX_DETAIL)}…` : out;
}

export interface HttpFailure {
  status: number;
  /** The raw body text. */
  body: string;
  /** Retry-After already converted to ms, when present and valid. */
  retryAfterMs?: number;
  operation: string;
}

/** Maps an error answer (status + problem+json body) to a {@link RunPodError}. */
export function errorFromResponse(failure: HttpFailure, secrets: readonly string[]): RunPodError {
  const problem = parseProblem(failure.body);
  const detail = redact(
    problem?.detail ?? problem?.title ?? (failure.body.trim() || `HTTP ${failure.status}`),
    secrets,
  );
  const errors = problem?.errors?.map((e) => redact(e, secrets));
  const { status, operation } = failure;
  const base: RunPodErrorDetails = {
    upstreamStatus: status,
    detail,
    operation,
    ...(errors === undefined ? {} : { errors }),
    ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
  };
  const at = `${operation}: ${status}`;

  if (status === 401) {
    return new RunPodError('RUNPOD_AUTH', `RunPod rejected the API key (${at} ${detail})`, {
      ...base,
      hint: 'Set RUNPOD_API_KEY to a valid key (RunPod console → Settings → API Keys) with read/write access to pods.',
    });
  }
  if (status === 403) {
    return new RunPodError('RUNPOD_FORBIDDEN', `RunPod refused access (${at} ${detail})`, {
      ...base,
      hint: 'The API key is valid but lacks permission for this resource or GPU pool: use a key with read/write pod access, or another GPU type.',
    });
  }
  if (status === 402) {
    return new RunPodError(
      'RUNPOD_INSUFFICIENT_BALANCE',
      `RunPod account balance is too low (${at} ${detail})`,
      {
        ...base,
        hint: 'Add credit to the RunPod account; no GPU type will start until the balance allows it.',
      },
    );
  }
  if (status === 404) {
    return new RunPodError('RUNPOD_NOT_FOUND', `RunPod does not know this resource (${at} ${detail})`, {
      ...base,
      hint: 'The pod may have been terminated elsewhere; run `runpod-llm status` to reconcile the state.',
    });
  }
  if (status === 409) {
    return new RunPodError(
      'RUNPOD_CONFLICT',
      `RunPod refused the action in the pod's current status (${at} ${detail})`,
      {
        ...base,
        hint: "Read the pod's status and `actions` first: RUNNING allows stop/restart/terminate, EXITED/ERROR allow start/terminate.",
      },
    );
  }
  if (status === 429) {
    return new RunPodError('RUNPOD_RATE_LIMITED', `RunPod rate limit reached (${at} ${detail})`, {
      ...base,
      hint: 'Wait for the time in Retry-After, or poll less often (the watchdog interval).',
    });
  }
  if (status === 400 && isNoCapacityDetail(detail)) {
    return new RunPodError(
      'RUNPOD_NO_CAPACITY',
      `RunPod has no capacity for the requested GPU (${at} ${detail})`,
      {
        ...base,
        hint: 'Try another GPU type (--gpu, or --min-vram to let the catalog choose), the other cloud, or retry later.',
      },
    );
  }
  if (status === 400 || status === 422) {
    const list = errors !== undefined && errors.length > 0 ? `: ${errors.join('; ')}` : '';
    return new RunPodError('RUNPOD_BAD_REQUEST', `RunPod rejected the request (${at} ${detail}${list})`, {
      ...base,
      hint: 'The request breaks a RunPod rule or the API schema; check the pod settings (GPU id, disk, ports, image).',
    });
  }
  if (status >= 500) {
    return new RunPodError('RUNPOD_UNAVAILABLE', `RunPod is unavailable (${at} ${detail})`, {
      ...base,
      hint: 'A transient RunPod failure: retry in a minute; see https://uptime.runpod.io.',
    });
  }
  return new RunPodError('RUNPOD_BAD_RESPONSE', `RunPod answered an unexpected status (${at} ${detail})`, {
    ...base,
    hint: 'Check RUNPOD_API_URL points at the RunPod REST v2 API (default https://api.runpod.io).',
  });
}

/** A request that got no HTTP answer: connection refused/reset, DNS, or our own timeout. */
export function unavailableError(
  operation: string,
  reason: 'timeout' | 'network',
  timeoutMs: number,
  cause: unknown,
  secrets: readonly string[],
): RunPodError {
  const what =
    reason === 'timeout'
      ? `no answer within ${timeoutMs} ms`
      : redact(cause instanceof Error ? networkReason(cause) : String(cause), secrets);
  return new RunPodError('RUNPOD_UNAVAILABLE', `RunPod could not be reached (${operation}: ${what})`, {
    operation,
    hint: 'Check the network and RUNPOD_API_URL (default https://api.runpod.io); retry in a minute.',
    // The cause is kept for debugging but is never a Request object, so it holds no headers.
    cause: redactedCause(cause, secrets),
  });
}

/** A 2xx whose body is not the shape the spec promises. */
export function badResponseError(
  operation: string,
  status: number,
  issues: z.core.$ZodIssue[] | string,
  secrets: readonly string[],
): RunPodError {
  const summary =
    typeof issues === 'string'
      ? issues
      : issues
          .slice(0, 3)
          .map((i) => `${i.path.length > 0 ? i.path.join('.') : '$'}: ${i.message}`)
          .join('; ');
  return new RunPodError(
    'RUNPOD_BAD_RESPONSE',
    `RunPod answered a body this tool cannot read (${operation}: ${status}: ${redact(summary, secrets)})`,
    {
      upstreamStatus: status,
      operation,
      hint: 'Check RUNPOD_API_URL points at the RunPod REST v2 API; if it does, the API changed: update runpod-llm-manager.',
    },
  );
}

function parseProblem(body: string): Problem | undefined {
  try {
    const result = ProblemSchema.safeParse(JSON.parse(body));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

/** Node's fetch says only "fetch failed"; the useful reason (ECONNREFUSED, …) is in `cause`. */
function networkReason(err: Error): string {
  const inner = (err as { cause?: unknown }).cause;
  if (inner instanceof Error) {
    const code = (inner as NodeJS.ErrnoException).code;
    return code === undefined ? inner.message : `${code} ${inner.message}`;
  }
  return err.message;
}

function redactedCause(cause: unknown, secrets: readonly string[]): Error {
  if (cause instanceof Error) {
    const copy = new Error(redact(networkReason(cause), secrets));
    copy.name = cause.name;
    return copy;
  }
  return new Error(redact(String(cause), secrets));
}
