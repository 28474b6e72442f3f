import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';

/*
 * Configuration: read (file, environment, flags) → merge → parse (zod) → rules.
 * Returns every problem at once, each with its dotted path, where the value came from and what
 * is valid. Nothing here exits or prints: the CLI decides.
 *
 * @example
 *   const { config, errors, warnings } = loadConfig({ env: process.env, flags: { proxy_port: 9000 } });
 */

/** One configuration problem: its dotted path, what is wrong, where the value came from. */
export interface ConfigProblem {
  path: string;
  message: string;
  /** `env PORT`, `file ./runpod-llm.json`, `flag --port`, or `default`. */
  source: string;
  /**
   * What the user typed, when a flag or an environment variable set the value: `--runtime 5x`,
   * `PORT=abc` (a secret as `GATEWAY_API_KEYS=…`). Absent for the file and defaults.
   */
  given?: string;
}

export interface LoadResult {
  config: Config | undefined;
  errors: ConfigProblem[];
  warnings: ConfigProblem[];
  /** The config file that was read, if any. */
  file: string | undefined;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Flag values keyed by config path (`proxy_port`, `upstream.url`). */
  flags?: Record<string, unknown>;
  /** Explicit config file (`--config`); otherwise RUNPOD_LLM_CONFIG or ./runpod-llm.json if present. */
  configPath?: string;
  cwd?: string;
}

type Kind = 'string' | 'int' | 'number' | 'bool' | 'list';

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

/** Paths that hold secrets: they may come from a file, with a warning; they are never echoed. */
const SECRET_PATHS = new Set(['upstream.api_key', 'api_keys']);

export function loadConfig(options: LoadOptions = {}): LoadResult {
  const env = options.env ?? {};
  const cwd = options.cwd ?? process.cwd();
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const sources = new Map<string, string>();
  /** Config path → what the user typed for it (flags and environment only). */
  const givens = new Map<string, string>();
  const raw: Record<string, unknown> = {};

  const file =
    options.configPath ??
    env.RUNPOD_LLM_CONFIG ??
    (existsSync(join(cwd, 'runpod-llm.json')) ? join(cwd, 'runpod-llm.json') : undefined);
  if (file !== undefined) readConfigFile(resolve(cwd, file), raw, sources, errors, warnings);

  for (const [name, path, kind] of ENV_VARS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const given = `${name}=${SECRET_PATHS.has(path) ? '…' : shown(value)}`;
    const converted = convert(value, kind);
    if (converted === undefined) {
      errors.push({ path, message: `not ${kindName(kind)}`, source: `env ${name}`, given });
      continue;
    }
    setPath(raw, path, converted);
    sources.set(path, `env ${name}`);
    givens.set(path, given);
  }
  applySeedEndpoint(env, raw, sources, errors, warnings);

  for (const [path, value] of Object.entries(options.flags ?? {})) {
    if (value === undefined) continue;
    setPath(raw, path, value);
    const flag = FLAG_NAMES[path] ?? `--${path}`;
    sources.set(path, `flag ${flag}`);
    givens.set(path, flagText(flag, value));
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push(fromIssue(issue, sources, givens));
    return { config: undefined, errors, warnings, file };
  }
  const config = parsed.data;
  config.home ??= env.HOME === undefined ? join(homedir(), '.runpod-llm') : join(env.HOME, '.runpod-llm');
  applyRules(config, sources, givens, errors, warnings);
  return { config: errors.length === 0 ? config : undefined, errors, warnings, file };
}

function readConfigFile(
  path: string,
  raw: Record<string, unknown>,
  sources: Map<string, string>,
  errors: ConfigProblem[],
  warnings: ConfigProblem[],
): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    errors.push({
      path: '(file)',
      message: `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      source: `file ${path}`,
    });
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    errors.push({
      path: '(file)',
      message: `config file ${path} is not valid JSON: ${(err as Error).message}`,
      source: `file ${path}`,
    });
    return;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push({
      path: '(file)',
      message: `config file ${path} must hold a JSON object`,
      source: `file ${path}`,
    });
    return;
  }
  for (const [key, entry] of Object.entries(value)) {
    if (key === '$schema') continue;
    raw[key] = entry;
    if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      for (const sub of Object.keys(entry as Record<string, unknown>))
        sources.set(`${key}.${sub}`, `file ${path}`);
    }
    sources.set(key, `file ${path}`);
  }
  for (const secret of SECRET_PATHS) {
    if (getPath(raw, secret) !== undefined) {
      warnings.push({
        path: secret,
        message:
          'a secret in the config file: prefer the environment (GATEWAY_API_KEYS / UPSTREAM_API_KEY) and keep the file 0600',
        source: `file ${path}`,
      });
    }
  }
}

/** The original Python tool's RUNPOD_ENDPOINT is a full `.../v1/chat/completions` URL; we take its `/v1` base. */
function applySeedEndpoint(
  env: NodeJS.ProcessEnv,
  raw: Record<string, unknown>,
  sources: Map<string, string>,
  errors: ConfigProblem[],
  warnings: ConfigProblem[],
): void {
  const endpoint = env.RUNPOD_ENDPOINT;
  if (endpoint === undefined || endpoint === '' || getPath(raw, 'upstream.url') !== undefined) return;
  const match = /^(https?:\/\/.+\/v1)\/chat\/completions\/?$/.exec(endpoint);
  if (match?.[1] === undefined) {
    errors.push({
      path: 'upstream.url',
      message:
        'RUNPOD_ENDPOINT must be a full URL ending in /v1/chat/completions (or set UPSTREAM_URL to the /v1 base)',
      source: 'env RUNPOD_ENDPOINT',
    });
    return;
  }
  setPath(raw, 'upstream.url', match[1]);
  sources.set('upstream.url', 'env RUNPOD_ENDPOINT');
  warnings.push({
    path: 'upstream.url',
    message: `RUNPOD_ENDPOINT is the original Python tool's name; using ${match[1]} as UPSTREAM_URL`,
    source: 'env RUNPOD_ENDPOINT',
  });
}

/** A value as shown after `NAME=` or a flag: bare, quoted only when it has spaces, capped. */
function shown(value: string): string {
  const capped = value.length > 60 ? `${value.slice(0, 60)}…` : value;
  return /[\s"]/.test(capped) || capped === '' ? JSON.stringify(capped) : capped;
}

/** `--runtime 5x`, `--gpu A --gpu B`, `--unguarded` (a switch), as the user typed it. */
function flagText(flag: string, value: unknown): string {
  if (typeof value === 'boolean') return flag;
  if (Array.isArray(value)) return value.map((v) => `${flag} ${shown(String(v))}`).join(' ');
  return `${flag} ${shown(String(value))}`;
}

function applyRules(
  config: Config,
  sources: Map<string, string>,
  givens: Map<string, string>,
  errors: ConfigProblem[],
  warnings: ConfigProblem[],
): void {
  const src = (path: string): { source: string; given?: string } => {
    const given = givens.get(path);
    return { source: sources.get(path) ?? 'default', ...(given === undefined ? {} : { given }) };
  };
  if (config.upstream.url !== undefined && !/\/v1\/?$/.test(config.upstream.url)) {
    errors.push({
      path: 'upstream.url',
      message: `must be an OpenAI-compatible base ending in /v1 (got ${config.upstream.url})`,
      ...src('upstream.url'),
    });
  }
  if (config.use_https) {
    for (const key of ['ssl_cert', 'ssl_key'] as const) {
      const path = config[key];
      if (path === undefined)
        errors.push({
          path: key,
          message: `use_https is on but ${key} is not set (env ${key.toUpperCase()})`,
          ...src(key),
        });
      else if (!existsSync(path))
        errors.push({ path: key, message: `${key} file not found: ${path}`, ...src(key) });
    }
  }
  if (config.auth === 'none' && !isLoopback(config.proxy_host)) {
    errors.push({
      path: 'auth',
      message: `auth "none" is refused on a non-loopback address (${config.proxy_host}): anyone on the network could use your GPU; set GATEWAY_API_KEYS`,
      ...src('auth'),
    });
  }
  if (config.auth === 'keys' && config.api_keys.length === 0 && !isLoopback(config.proxy_host)) {
    errors.push({
      path: 'api_keys',
      message: `binding to ${config.proxy_host} needs gateway keys: set GATEWAY_API_KEYS (comma separated, 16+ characters each)`,
      ...src('api_keys'),
    });
  }
  config.allowed_origins.forEach((origin, i) => {
    if (!isOrigin(origin))
      errors.push({
        path: `allowed_origins[${i}]`,
        message: `${JSON.stringify(origin)} is not an origin: use scheme://host[:port] with no path and no wildcard`,
        ...src('allowed_origins'),
      });
  });
  config.trusted_proxies.forEach((proxy, i) => {
    if (!isIpOrCidr(proxy))
      errors.push({
        path: `trusted_proxies[${i}]`,
        message: `${JSON.stringify(proxy)} is not an IP address or CIDR range`,
        ...src('trusted_proxies'),
      });
  });
  if (config.upstream.first_byte_timeout_ms < config.upstream.connect_timeout_ms) {
    warnings.push({
      path: 'upstream.first_byte_timeout_ms',
      message: 'shorter than the connect timeout',
      ...src('upstream.first_byte_timeout_ms'),
    });
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      url.origin === value.replace(/\/$/, '') &&
      !value.includes('*')
    );
  } catch {
    return false;
  }
}

function isIpOrCidr(value: string): boolean {
  const [ip, bits, extra] = value.split('/');
  if (extra !== undefined || ip === undefined) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
}

function convert(value: string, kind: Kind): unknown {
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

function kindName(kind: Kind): string {
  return {
    string: 'a string',
    int: 'a whole number',
    number: 'a number',
    bool: 'a boolean (true/false)',
    list: 'a comma-separated list',
  }[kind];
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  let node: unknown = target;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function fromIssue(
  issue: z.core.$ZodIssue,
  sources: Map<string, string>,
  givens: Map<string, string>,
): ConfigProblem {
  const path = issue.path.reduce<string>(
    (acc, part) =>
      typeof part === 'number' ? `${acc}[${part}]` : acc === '' ? String(part) : `${acc}.${String(part)}`,
    '',
  );
  const top = path.replace(/\[\d+\]$/, '');
  const secret = SECRET_PATHS.has(top);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown setting(s): ${issue.keys.join(', ')}`;
  // Never echo a secret's value back (zod messages can include the input).
  if (secret) message = message.replace(/"[^"]*"/g, '…');
  const given = givens.get(top) ?? givens.get(path);
  return {
    path: path === '' ? '(root)' : path,
    message,
    source: sources.get(top) ?? sources.get(path) ?? 'default',
    ...(given === undefined ? {} : { given }),
  };
}
