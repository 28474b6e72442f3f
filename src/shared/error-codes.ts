/**
 * Every error code the tool raises, in one table: what the gateway answers for it (HTTP status,
 * OpenAI `type` and `code`, whether a client should retry) and what the CLI exits with.
 * `AppError` takes only these codes, so a code missing here does not compile; the gateway's
 * renderer, its raw parser refusals (`client-error.ts`) and the CLI's exit code all read it.
 *
 * `http` is present for the codes the gateway answers with; the others never reach a client
 * (a gateway that somehow renders one answers 500 `server_error`). `retry` is `x-should-retry`.
 *
 * @example
 *   ERROR_CODES.GW_RATE_LIMITED; // { http: 429, openaiType: 'rate_limit_error', openaiCode: 'rate_limit_exceeded', exit: 1, retry: true }
 *   exitCodeFor(new AppError('STATE_LOCKED', '…')); // 7
 */

/**
 * The CLI's exit codes. Scripts and cron branch on them; README's "Exit codes" lists the same
 * numbers (a test holds them equal).
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | unexpected internal error (a bug: please report it) |
 * | 2 | bad usage or configuration |
 * | 3 | a required tool or service is missing on this machine |
 * | 4 | RunPod refused the API key (missing or invalid RUNPOD_API_KEY) |
 * | 5 | RunPod could not provide a working pod (no capacity, balance, rate limit, unavailable, pod failed to start) |
 * | 6 | a limit stopped the action (budget, runtime, readiness timeout) |
 * | 7 | state problem (locked by another manager, a run already active, corrupt or foreign state file) |
 * | 8 | the gateway (or the watchdog) could not start (port in use, TLS files, the service manager refused) |
 * | 9 | a check could not run (e.g. vulnerability audit unavailable) |
 * | 10 | a check ran and found problems (policy violation, failed security check) |
 * | 130 | interrupted (SIGINT/SIGTERM) before the command finished |
 */
export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  MISSING_DEPENDENCY: 3,
  RUNPOD_AUTH: 4,
  RUNPOD_CAPACITY: 5,
  LIMIT: 6,
  STATE: 7,
  GATEWAY_START: 8,
  CHECK_UNAVAILABLE: 9,
  CHECK_FAILED: 10,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** OpenAI's error `type` values, as its API and vLLM use them. */
export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error';

export interface ErrorCodeEntry {
  /** HTTP status the gateway answers with; absent: never rendered on purpose (500 if it is). */
  readonly http?: number;
  readonly openaiType?: OpenAiErrorType;
  /** The OpenAI `code` clients see. */
  readonly openaiCode?: string;
  readonly exit: ExitCode;
  /** `x-should-retry`; absent: the client's own rules by status. */
  readonly retry?: boolean;
}

const {
  INTERNAL,
  USAGE,
  MISSING_DEPENDENCY,
  RUNPOD_AUTH,
  RUNPOD_CAPACITY,
  LIMIT,
  STATE,
  GATEWAY_START,
  CHECK_UNAVAILABLE,
  CHECK_FAILED,
  INTERRUPTED,
} = EXIT;

/** A row the gateway answers with: status, type and code are all there. */
export interface RenderedEntry extends ErrorCodeEntry {
  readonly http: number;
  readonly openaiType: OpenAiErrorType;
  readonly openaiCode: string;
}

/** Gateway request errors never end a CLI command (the gateway answers them), hence exit 1. */
const gw = (http: number, openaiType: OpenAiErrorType, openaiCode: string, retry?: boolean): RenderedEntry =>
  retry === undefined
    ? { http, openaiType, openaiCode, exit: INTERNAL }
    : { http, openaiType, openaiCode, exit: INTERNAL, retry };

/** RunPod failures: if one is ever rendered by the gateway, an upstream dependency failed (502/503). */
const runpod = (exit: ExitCode, http: 502 | 503, openaiCode: string): RenderedEntry => ({
  http,
  openaiType: 'server_error',
  openaiCode,
  exit,
});

export const ERROR_CODES = {
  // The gateway's answers (hooks, routes, upstream).
  GW_UNAUTHORIZED: gw(401, 'authentication_error', 'invalid_api_key'),
  GW_RATE_LIMITED: gw(429, 'rate_limit_error', 'rate_limit_exceeded', true),
  GW_INVALID_REQUEST: gw(400, 'invalid_request_error', 'invalid_request'),
  GW_INVALID_JSON: gw(400, 'invalid_request_error', 'invalid_json'),
  GW_FORBIDDEN_PROPERTY: gw(400, 'invalid_request_error', 'forbidden_property'),
  GW_CONTENT_TOO_LONG: gw(400, 'invalid_request_error', 'content_too_long'),
  GW_CONTENT_POLICY: gw(400, 'invalid_request_error', 'content_policy_violation'),
  // vLLM's context-length 400, rewritten with OpenAI's code (upstream/context-length.ts): too
  // long stays too long.
  GW_CONTEXT_LENGTH_EXCEEDED: gw(400, 'invalid_request_error', 'context_length_exceeded', false),
  GW_REQUEST_TOO_LARGE: gw(413, 'invalid_request_error', 'request_too_large'),
  GW_UNSUPPORTED_MEDIA_TYPE: gw(415, 'invalid_request_error', 'unsupported_media_type'),
  GW_NOT_FOUND: gw(404, 'not_found_error', 'unknown_url'),
  GW_METHOD_NOT_ALLOWED: gw(405, 'invalid_request_error', 'method_not_allowed'),
  GW_NO_UPSTREAM: gw(503, 'server_error', 'no_upstream'),
  GW_UPSTREAM_UNAVAILABLE: gw(502, 'server_error', 'upstream_unavailable'),
  // The pod refused the gateway's key: the route is stale until the manager rewrites it.
  GW_UPSTREAM_AUTH: gw(502, 'server_error', 'upstream_auth_failed', false),
  GW_UPSTREAM_BAD_RESPONSE: gw(502, 'server_error', 'upstream_bad_response'),
  GW_UPSTREAM_TIMEOUT: gw(504, 'server_error', 'upstream_timeout'),
  // RunPod's proxy gave up (524) while the pod kept generating: a retry starts the work again.
  GW_UPSTREAM_PROXY_TIMEOUT: gw(504, 'server_error', 'upstream_proxy_timeout', false),
  GW_SHUTTING_DOWN: gw(503, 'server_error', 'shutting_down'),
  GW_LIMITER_UNAVAILABLE: gw(503, 'server_error', 'rate_limiter_unavailable', true),
  GW_MODEL_WAKING: gw(503, 'server_error', 'model_waking', true),
  GW_INTERNAL: gw(500, 'server_error', 'internal_error'),
  // What never reaches a route (client-error.ts): Node's parser refusals, slow clients, Host.
  GW_REQUEST_TIMEOUT: gw(408, 'invalid_request_error', 'request_timeout'),
  GW_HEADERS_TOO_LARGE: gw(431, 'invalid_request_error', 'request_header_fields_too_large'),
  GW_MALFORMED_REQUEST: gw(400, 'invalid_request_error', 'malformed_request'),
  GW_INVALID_HOST: gw(400, 'invalid_request_error', 'invalid_host'),
  // A client that fell too far behind the others sharing one coalesced stream (routes/relay.ts).
  GW_CLIENT_TOO_SLOW: gw(408, 'invalid_request_error', 'client_too_slow'),

  // The gateway process itself.
  GW_START_FAILED: { exit: GATEWAY_START },
  GW_PORT_IN_USE: { exit: GATEWAY_START },

  // RunPod (runpod/errors.ts).
  RUNPOD_AUTH: runpod(RUNPOD_AUTH, 502, 'auth'),
  RUNPOD_FORBIDDEN: runpod(RUNPOD_AUTH, 502, 'forbidden'),
  RUNPOD_NO_CAPACITY: runpod(RUNPOD_CAPACITY, 502, 'no_capacity'),
  RUNPOD_BAD_REQUEST: runpod(RUNPOD_CAPACITY, 502, 'bad_request'),
  RUNPOD_INSUFFICIENT_BALANCE: runpod(RUNPOD_CAPACITY, 502, 'insufficient_balance'),
  RUNPOD_NOT_FOUND: runpod(RUNPOD_CAPACITY, 502, 'not_found'),
  RUNPOD_CONFLICT: runpod(RUNPOD_CAPACITY, 502, 'conflict'),
  RUNPOD_RATE_LIMITED: runpod(RUNPOD_CAPACITY, 503, 'rate_limited'),
  RUNPOD_UNAVAILABLE: runpod(RUNPOD_CAPACITY, 503, 'unavailable'),
  RUNPOD_BAD_RESPONSE: runpod(RUNPOD_CAPACITY, 502, 'bad_response'),

  // Configuration and usage.
  CONFIG_INVALID: { exit: USAGE },
  CONFIG_GPU_UNKNOWN: { exit: USAGE },
  CONFIG_START_COMMAND: { exit: USAGE },
  // Unreadable TLS files stop the gateway from starting: that is exit 8, not a usage error.
  CONFIG_TLS: { exit: GATEWAY_START },
  CLI_USAGE: { exit: USAGE },
  CLI_USAGE_ADVISORIES: { exit: USAGE },
  CLI_USAGE_LICENSES: { exit: USAGE },
  CLI_USAGE_OUTPUT: { exit: USAGE },
  CLI_USAGE_OUTPUT_OUTSIDE_CWD: { exit: USAGE },

  // This machine.
  MISSING_NPM: { exit: MISSING_DEPENDENCY },
  MISSING_PROGRAM: { exit: MISSING_DEPENDENCY },
  MISSING_SERVICE_MANAGER: { exit: MISSING_DEPENDENCY },
  MISSING_REDIS: { exit: MISSING_DEPENDENCY },
  SERVICE_MANAGER_FAILED: { exit: GATEWAY_START },

  // The pod's life.
  LIFECYCLE_POD_FAILED: { exit: RUNPOD_CAPACITY },
  LIFECYCLE_READINESS_TIMEOUT: { exit: LIMIT },
  LIFECYCLE_WATCHDOG_FAILED: { exit: GATEWAY_START },
  LIFECYCLE_INTERRUPTED: { exit: INTERRUPTED },

  // The state directory.
  STATE_LOCKED: { exit: STATE },
  STATE_RUN_ACTIVE: { exit: STATE },
  STATE_MISSING: { exit: STATE },
  STATE_CORRUPT: { exit: STATE },
  STATE_FOREIGN: { exit: STATE },
  STATE_TOO_OLD: { exit: STATE },
  STATE_TOO_NEW: { exit: STATE },

  // Checks (doctor, security).
  CHECK_UNAVAILABLE_NO_PROJECT: { exit: CHECK_UNAVAILABLE },
  CHECK_UNAVAILABLE_SBOM: { exit: CHECK_UNAVAILABLE },
  CHECK_UNAVAILABLE_SBOM_EMPTY: { exit: CHECK_UNAVAILABLE },
  CHECK_UNAVAILABLE_TREE_INCOMPLETE: { exit: CHECK_UNAVAILABLE },
  CHECK_FAILED_DOCTOR: { exit: CHECK_FAILED },

  // A step of `runpod-llm demo` failed: the demo runs on this machine only, so that is a bug.
  DEMO_STEP_FAILED: { exit: INTERNAL },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The gateway's own answers: the `GW_` codes with an HTTP status. */
export type GatewayErrorCode = {
  [K in ErrorCode]: K extends `GW_${string}`
    ? (typeof ERROR_CODES)[K] extends RenderedEntry
      ? K
      : never
    : never;
}[ErrorCode];

/** The registry's row for a code (typed as the general shape, for code that reads any row). */
export function errorCodeEntry(code: ErrorCode): ErrorCodeEntry {
  return ERROR_CODES[code];
}
