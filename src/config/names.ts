/*
 * Where a config value can be set besides the file: the environment variables (the original
 * Python tool's names are kept) and the CLI flags, and how an environment string converts.
 */

export type Kind = 'string' | 'int' | 'number' | 'bool' | 'list';

/** Environment variables → config paths. The original Python tool's names are kept. */
export const ENV_VARS: ReadonlyArray<readonly [string, string, Kind]> = [
  ['HOST', 'proxy_host', 'string'],
  ['PORT', 'proxy_port', 'int'],
  ['RUNPOD_LLM_HOME', 'home', 'string'],
  ['UPSTREAM_URL', 'upstream.url', 'string'],
  ['UPSTREAM_API_KEY', 'upstream.api_key', 'string'],
  ['UPSTREAM_STREAM_NON_STREAMING', 'upstream.stream_non_streaming', 'string'],
  ['GATEWAY_AUTH', 'auth', 'string'],
  ['GATEWAY_API_KEYS', 'api_keys', 'list'],
  ['RATE_LIMIT_REQUESTS', 'rate_limit_requests', 'int'],
  ['RATE_LIMIT_WINDOW', 'rate_limit_window', 'int'],
  ['KEY_RATE_LIMIT_REQUESTS', 'key_rate_limit_requests', 'int'],
  ['KEY_RATE_LIMIT_TOKENS', 'key_rate_limit_tokens', 'int'],
  ['TRUSTED_PROXIES', 'trusted_proxies', 'list'],
  ['MAX_REQUEST_SIZE', 'max_request_size', 'int'],
  ['MAX_CONTENT_LENGTH', 'max_content_length', 'int'],
  ['CONTENT_POLICY', 'content_policy', 'string'],
  ['ALLOWED_ORIGINS', 'allowed_origins', 'list'],
  ['USE_HTTPS', 'use_https', 'bool'],
  ['SSL_CERT', 'ssl_cert', 'string'],
  ['SSL_KEY', 'ssl_key', 'string'],
  ['LOG_LEVEL', 'log_level', 'string'],
  ['LOG_FILE', 'log_file', 'string'],
  ['LOG_MAX_BYTES', 'log_max_bytes', 'int'],
  ['LOG_MAX_FILES', 'log_max_files', 'int'],
  ['LOG_MAX_AGE', 'log_max_age', 'string'],
  ['LOG_CLIENT_IP', 'log_client_ip', 'string'],
  ['ENABLE_PROFILING', 'enable_profiling', 'bool'],
  ['CACHE_MODE', 'cache_mode', 'string'],
  ['CACHE_SCOPE', 'cache_scope', 'string'],
  ['MAX_CACHE_SIZE', 'max_cache_size', 'int'],
  ['CACHE_SIZE_BYTES', 'cache_size_bytes', 'int'],
  ['CACHE_TTL', 'cache_ttl_s', 'int'],
  ['CACHE_DIR', 'cache_dir', 'string'],
  ['REDIS_URL', 'redis_url', 'string'],
  ['REDIS_PREFIX', 'redis_prefix', 'string'],
  ['REDIS_LIMITER_FALLBACK', 'redis_limiter_fallback', 'string'],
  ['WAKE_ON_REQUEST', 'wake_on_request', 'bool'],
  ['WAKE_WAIT', 'wake_wait_s', 'int'],
  ['RUNPOD_API_URL', 'manager.runpod_api_url', 'string'],
  ['RUNPOD_POD_URL_TEMPLATE', 'manager.pod_url_template', 'string'],
  ['RUNPOD_LLM_MODEL', 'manager.model', 'string'],
  ['RUNPOD_LLM_GPU_TYPES', 'manager.gpu_types', 'list'],
  ['RUNPOD_LLM_CLOUD', 'manager.cloud', 'string'],
  ['RUNPOD_LLM_RUNTIME_LIMIT', 'manager.runtime_limit', 'string'],
  ['RUNPOD_LLM_IDLE_LIMIT', 'manager.idle_limit', 'string'],
  ['RUNPOD_LLM_POD_LEASE', 'manager.pod_lease', 'string'],
  ['RUNPOD_LLM_IDLE_ACTION', 'manager.idle_action', 'string'],
  ['RUNPOD_LLM_BUDGET_USD', 'manager.budget_usd', 'number'],
  ['RUNPOD_LLM_DAILY_BUDGET_USD', 'manager.daily_budget_usd', 'number'],
  ['RUNPOD_LLM_MONTHLY_BUDGET_USD', 'manager.monthly_budget_usd', 'number'],
  ['RUNPOD_LLM_READINESS_TIMEOUT', 'manager.readiness_timeout', 'string'],
  ['RUNPOD_LLM_READINESS_POLL', 'manager.readiness_poll', 'string'],
  ['RUNPOD_LLM_VLLM_IMAGE', 'manager.vllm_image', 'string'],
  ['RUNPOD_LLM_WATCH_INTERVAL', 'manager.watch_interval', 'string'],
  ['RUNPOD_LLM_REPLICAS', 'manager.replicas', 'int'],
  ['RUNPOD_LLM_POD_GUARD', 'manager.guard', 'bool'],
  ['RUNPOD_LLM_RETENTION', 'manager.retention', 'string'],
  ['RUNPOD_LLM_HEALTH_FAIL_PASSES', 'manager.health_fail_passes', 'int'],
  ['RUNPOD_LLM_MAX_RECREATIONS', 'manager.max_recreations', 'int'],
];

/**
 * The CLI flags that set config paths (declared in cli/program.ts), so a problem names the flag
 * the user typed rather than only the path. A path missing here is named `--<path>`.
 */
export const FLAG_NAMES: Readonly<Record<string, string>> = {
  proxy_host: '--host',
  proxy_port: '--port',
  'upstream.url': '--upstream',
  log_level: '--log-level',
  'manager.model': '--model',
  'manager.gpu_types': '--gpu',
  'manager.min_vram_gb': '--min-vram',
  'manager.cloud': '--cloud',
  'manager.runtime_limit': '--runtime',
  'manager.idle_limit': '--idle',
  'manager.idle_action': '--idle-action',
  'manager.budget_usd': '--budget',
  'manager.readiness_timeout': '--readiness-timeout',
  'manager.replicas': '--replicas',
  'manager.guard': '--unguarded',
  'manager.vllm_image': '--image',
  'manager.watch_interval': '--interval',
};

export function convert(value: string, kind: Kind): unknown {
  switch (kind) {
    case 'string':
      return value;
    case 'int':
      return /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
    case 'number':
      return /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value.trim()) : undefined;
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(value.trim())) return true;
      if (/^(0|false|no|off)$/i.test(value.trim())) return false;
      return undefined;
    case 'list':
      return value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
  }
}

export function kindName(kind: Kind): string {
  return {
    string: 'a string',
    int: 'a whole number',
    number: 'a number',
    bool: 'a boolean (true/false)',
    list: 'a comma-separated list',
  }[kind];
}
