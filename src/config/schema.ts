import { z } from 'zod';
import { parseDuration, parseOptionalDuration } from '../shared/duration.js';

/**
 * The one configuration schema: file (`runpod-llm.json`) + environment + flags are merged into
 * this shape, then parsed once. Defaults live here as data. Names follow the original Python tool
 * (`proxy_port`, `max_request_size`, `rate_limit_*`, `allowed_origins`, …) so its users find them.
 */

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();
const ms = z.number().int().min(1);

/** The original Python tool's three localhost origins (its runpod_llm_manager/config.py). */
export const DEFAULT_ALLOWED_ORIGINS = [
  'http://localhost:3000',
  'http://127.0.0.1:3000',
  'http://localhost:8080',
];

export const upstreamSchema = z.strictObject({
  /** An OpenAI-compatible base ending in `/v1` (UPSTREAM_URL), or derived from RUNPOD_ENDPOINT. */
  url: z.url({ protocol: /^https?$/ }).optional(),
  /** Bearer key the gateway adds upstream (UPSTREAM_API_KEY). Environment only by policy. */
  api_key: z.string().min(1).optional(),
  connect_timeout_ms: ms.default(10_000),
  /** Time to the response headers. Non-streaming vLLM answers send headers only when done. */
  first_byte_timeout_ms: ms.default(300_000),
  /** Longest silence between two body chunks. */
  idle_timeout_ms: ms.default(120_000),
  /** Non-streaming responses larger than this become a 502 (a runaway upstream cannot exhaust memory). */
  max_response_bytes: positiveInt.default(32 * 1024 * 1024),
  /** Keep-alive connections per upstream. */
  connections: positiveInt.default(128),
  /**
   * Non-streamed chat/completions travel streamed and are assembled, so RunPod's proxy (524 after
   * 100 s without a byte) cannot end long answers. `auto`: on for the manager's pod routes and
   * for a static URL on `*.proxy.runpod.net`.
   */
  stream_non_streaming: z.enum(['auto', 'always', 'never']).default('auto'),
  /** Where the route source reads routes from: a static URL, or the manager's state. */
  source: z.enum(['auto', 'static', 'state']).default('auto'),
});

/** A duration with its unit (`30s`, `15m`, `1h30m`); a bare number is refused (seconds or minutes?). */
const duration = z.string().transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(value)} is not a duration: use a number with a unit, e.g. "90s", "15m", "1h30m"`,
    });
    return z.NEVER;
  }
  return ms;
});
/** A duration, or `off` (also JSON null) for no limit. */
const optionalDuration = z.union([z.string(), z.null()]).transform((value, ctx) => {
  if (value === null) return null;
  const ms = parseOptionalDuration(value);
  if (ms === undefined || (ms !== null && ms <= 0)) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(value)} is not a duration: use e.g. "15m" or "1h", or "off" for no limit`,
    });
    return z.NEVER;
  }
  return ms;
});
const usd = z.number().positive().nullable();
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** vLLM images are pinned: `latest` changes under a running setup and breaks it without a trace. */
const vllmImage = z
  .string()
  .regex(/^[\w.\-/]+:[\w.\-]+$/, 'must be an image with a pinned tag, e.g. "vllm/vllm-openai:v0.11.0"')
  .refine((image) => !image.endsWith(':latest'), 'pin a version tag: "latest" changes under you');

/** Names that go into the pod's command line: no spaces or shell metacharacters. */
const modelName = z
  .string()
  .regex(/^[\w.\-/:@]+$/, 'letters, digits and . _ - / : @ only (it becomes a vLLM argument)');

/**
 * The pod manager (`up`, `down`, `status`, `watch`, `catalog`). Durations are strings with units.
 * RUNPOD_API_KEY and HF_TOKEN are never here: they come from the environment only.
 */
export const managerSchema = z
  .strictObject({
    /** Hugging Face model id vLLM serves. */
    model: modelName.default('Qwen/Qwen2.5-Coder-7B-Instruct'),
    /** The name clients use (`--served-model-name`); default: the model id. */
    served_model_name: modelName.optional(),
    /** GPU type ids to try in order (RunPod ids, see `runpod-llm catalog`); empty: cheapest that fits. */
    gpu_types: z.array(z.string().min(1)).default([]),
    gpu_count: z.number().int().min(1).max(8).default(1),
    /** VRAM the model needs across the pod's GPUs, when the catalog chooses. */
    min_vram_gb: z.number().min(0).default(24),
    cloud: z.enum(['SECURE', 'COMMUNITY']).default('SECURE'),
    /** Terminate the run this long after `up` (RunPod's own timers are not enforced). */
    runtime_limit: optionalDuration.default(2 * HOUR),
    /** No gateway request for this long → idle_action. */
    idle_limit: optionalDuration.default(15 * MINUTE),
    /** terminate (default: a stopped pod can come back without GPUs) or stop (keeps the volume). */
    idle_action: z.enum(['stop', 'terminate']).default('terminate'),
    /** USD caps: this run, each UTC day, each UTC month (null: none). */
    budget_usd: usd.default(null),
    daily_budget_usd: usd.default(null),
    monthly_budget_usd: usd.default(null),
    /** Image pull + model download + load; a fresh host can take many minutes. */
    readiness_timeout: duration.default(20 * MINUTE),
    readiness_poll: duration.default(5_000),
    vllm_image: vllmImage.default('vllm/vllm-openai:v0.11.0'),
    max_model_len: z.number().int().min(256).default(16_384),
    gpu_memory_utilization: z.number().min(0.1).max(0.99).default(0.9),
    /** Container disk (GB). */
    container_disk_gb: z.number().int().min(5).default(40),
    /** Pod volume at /workspace for the Hugging Face cache (GB; 0: none, every start downloads again). */
    volume_gb: z.number().int().min(0).default(60),
    runpod_api_url: z.url({ protocol: /^https?$/ }).default('https://api.runpod.io'),
    /** How pods are reached; `{podId}` and `{port}` are substituted. */
    pod_url_template: z
      .string()
      .regex(/^https?:\/\/.*\{podId\}/, 'must be an http(s) URL containing {podId} (and usually {port})')
      .default('https://{podId}-{port}.proxy.runpod.net'),
    /** `watch --loop` pass interval. */
    watch_interval: duration.default(30_000),
    /** A recreated pod gets at least this much runtime (the original Python tool's 5 minutes). */
    min_recreate_runtime: duration.default(5 * MINUTE),
    /**
     * Pods the run keeps ready: the gateway spreads requests over them, the watchdog
     * replaces dead ones, and idleness, the runtime limit and the budgets apply to the group
     * (the budget counts the sum of all pods).
     */
    replicas: z.number().int().min(1).max(16).default(1),
    /**
     * The pod-side guard (src/guard/guard.py) in front of vLLM: only five routes, the /v1 ones
     * only with the pod key. false (`up --unguarded`) exposes vLLM's open routes (/invocations,
     * /tokenize, /pause, …) on the public pod URL; kept as the fallback should the JSON start
     * command not work on an image (docs/runpod-contract.md, Start-command forms).
     */
    guard: z.boolean().default(true),
    /**
     * Guarded pods stop themselves when no watchdog pass (and no request) has reached them for
     * this long, and at the runtime limit, through RunPod's API from the pod: a laptop closed with
     * the watchdog on it cannot leave a GPU billing. `off`: only the watchdog enforces the limits.
     */
    pod_lease: optionalDuration.default(15 * MINUTE),
    /**
     * How long the state keeps history (nothing grows without bound): audit and spend rows, and ended runs with
     * their pods, older than this are pruned by the watchdog once a day. At least 62 days, so the
     * monthly budget always sees its whole month.
     */
    retention: duration.default(400 * 24 * HOUR),
    // A routed pod whose health check fails on this many consecutive watchdog passes is
    // dead (recreated); and at most this many recreations per run (a model that cannot load must
    // not burn money in a loop of new pods). `max_recreations: 0` never recreates.
    health_fail_passes: z.number().int().min(1).max(100).default(3),
    max_recreations: z.number().int().min(0).max(100).default(3),
  })
  .superRefine((m, ctx) => {
    if (m.pod_lease !== null && m.pod_lease < 2 * m.watch_interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['pod_lease'],
        message: `must be at least twice watch_interval (${m.watch_interval / 1000} s), or "off": each watchdog pass renews it`,
      });
    }
    if (m.retention < 62 * 24 * HOUR) {
      ctx.addIssue({
        code: 'custom',
        path: ['retention'],
        message: 'must be at least 62d: the monthly budget adds up the whole current month',
      });
    }
  });
export type ManagerConfig = z.infer<typeof managerSchema>;

export const configSchema = z.strictObject({
  proxy_host: z.string().min(1).default('127.0.0.1'),
  proxy_port: port.default(8000),
  /** RUNPOD_LLM_HOME: state, generated keys, pid files. 0700. */
  home: z.string().min(1).optional(),
  upstream: upstreamSchema.default(upstreamSchema.parse({})),
  /** `keys`: bearer keys required. `none`: only allowed on loopback, and only when set explicitly. */
  auth: z.enum(['keys', 'none']).default('keys'),
  /** Gateway keys (GATEWAY_API_KEYS, comma separated). At least 16 characters each. */
  api_keys: z.array(z.string().min(16, 'a gateway key needs at least 16 characters')).default([]),
  /**
   * Per client IP, for requests without a valid gateway key (missing, wrong: brute-force
   * protection) and for the open routes (the original Python tool's 60 per minute). Authenticated requests are
   * counted per key instead (key_rate_limit_*), so a developer's IDE never meets this one.
   */
  rate_limit_requests: positiveInt.default(60),
  rate_limit_window: positiveInt.default(60),
  /**
   * Per gateway key, per rate_limit_window: 1,200 a minute (20 a second). One developer peaks
   * at a few requests a second (autocomplete 1-3/s while typing, agent turns, bursts of
   * embeddings or rerank while an IDE indexes), so this is never met in use; a leaked or
   * runaway key still cannot take the pod from the rest of the team.
   */
  key_rate_limit_requests: positiveInt.default(1200),
  /** Optional tokens (prompt + completion, from each answer's `usage`) per key per window; null: off. */
  key_rate_limit_tokens: positiveInt.nullable().default(null),
  /** Peers whose X-Forwarded-For is believed (IPs or CIDRs). Empty: the socket peer is the client. */
  trusted_proxies: z.array(z.string().min(1)).default([]),
  max_request_size: z.number().int().min(1024).default(1_048_576),
  /**
   * The original Python tool's per-message byte cap (50000 there). Off by default: the model's context
   * (vLLM's max_model_len) bounds a prompt, and over it the client gets OpenAI's
   * `context_length_exceeded`; a 50 KB cap refused source files agents read well within it.
   */
  max_content_length: z.number().int().min(100).nullable().default(null),
  max_messages: positiveInt.default(2048),
  max_tokens: positiveInt.default(131_072),
  max_n: positiveInt.default(16),
  /** What to do with `<script>` tags and `javascript:` URLs in message content. */
  content_policy: z.enum(['off', 'strip', 'reject']).default('off'),
  allowed_origins: z.array(z.string().min(1)).default(DEFAULT_ALLOWED_ORIGINS),
  use_https: z.boolean().default(false),
  ssl_cert: z.string().min(1).optional(),
  ssl_key: z.string().min(1).optional(),
  /** Slow-client protection: all request headers within this time. */
  headers_timeout_ms: ms.default(10_000),
  /** Slow-client protection: the whole request (headers and body) within this time. */
  request_timeout_ms: ms.default(30_000),
  keep_alive_timeout_ms: ms.default(5_000),
  /** On SIGTERM, how long in-flight requests and streams may run on. */
  shutdown_grace_ms: ms.default(10_000),
  health_probe_interval_ms: ms.default(15_000),
  /** /metrics needs a gateway key unless this is false (Prometheus supports bearer tokens). */
  metrics_require_auth: z.boolean().default(true),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log file (JSON lines); default stdout. `up` sets it for its gateway and watchdog (`<home>/logs/`). */
  log_file: z.string().min(1).optional(),
  /**
   * Log files rotate: a new file each day and whenever the current one reaches
   * `log_max_bytes`; at most `log_max_files` files per log (the current one included); rotated
   * files older than `log_max_age` are deleted. Bound per log: files × bytes (75 MB by default).
   */
  log_max_bytes: z
    .number()
    .int()
    .min(1024)
    .default(5 * 1024 * 1024),
  log_max_files: z.number().int().min(2).max(1000).default(15),
  log_max_age: duration.default(14 * 24 * HOUR),
  /**
   * What logs keep of a client address: `truncated` (IPv4 /24, IPv6 /48), `hashed` (a keyed
   * hash whose key changes daily: a day's lines correlate, the address is not kept) or `full`.
   * Applies to every log line (files and stdout); the rate limiter still sees full addresses.
   */
  log_client_ip: z.enum(['full', 'truncated', 'hashed']).default('truncated'),
  enable_profiling: z.boolean().default(false),
  /** `deterministic`: cache only temperature-0 or seeded requests with n = 1; `all`; `off`. */
  cache_mode: z.enum(['deterministic', 'all', 'off']).default('deterministic'),
  /**
   * `shared` (default): one cache for every gateway key — an identical request from a teammate is
   * a hit. `key`: each gateway key has its own entries, so nobody can learn from a hit (or its
   * speed) that someone else sent the same request.
   */
  cache_scope: z.enum(['shared', 'key']).default('shared'),
  /** Entries held at most (MAX_CACHE_SIZE, the original Python tool's name). */
  max_cache_size: positiveInt.default(1000),
  /** Bytes held at most (CACHE_SIZE_BYTES, the original Python tool's name). */
  cache_size_bytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024 * 1024),
  /** One answer larger than this is passed through but not stored. */
  cache_max_entry_bytes: z
    .number()
    .int()
    .min(1024)
    .default(8 * 1024 * 1024),
  /** Seconds an answer is kept (retention of user content; see SECURITY.md). */
  cache_ttl_s: positiveInt.default(3600),
  /** Persist cache entries here (files 0600) so they survive a restart; absent: memory only. */
  cache_dir: z.string().min(1).optional(),
  /** Redis shared by gateway replicas for rate limits and the cache (REDIS_URL); absent: memory. */
  redis_url: z.url({ protocol: /^rediss?$/ }).optional(),
  /** Namespace for every Redis key, so several deployments can share one Redis. */
  redis_prefix: z.string().min(1).max(64).default('rlm:'),
  /**
   * When Redis is unreachable, the limiter: `local` keeps limiting per replica in memory (the
   * limit is then per gateway, not shared, until Redis returns), `fail-closed` refuses API
   * requests with 503, `fail-open` lets them through unlimited.
   */
  redis_limiter_fallback: z.enum(['local', 'fail-closed', 'fail-open']).default('local'),
  /**
   * Scale to zero: a request arriving while no pod is ready asks the manager (through the state;
   * the gateway never holds the RunPod key) to start one, and is answered 503 `model_waking`
   * with Retry-After — or held up to `wake_wait_s` for the pod to become ready.
   */
  wake_on_request: z.boolean().default(false),
  wake_wait_s: z.number().int().min(0).max(600).default(0),
  /** The pod manager: model, GPUs, limits, budgets, readiness (see managerSchema). */
  manager: managerSchema.default(managerSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Every value at its default: what tests start from. */
export function defaultConfig(overrides: ConfigInput = {}): Config {
  return configSchema.parse(overrides);
}
