import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Config } from './schema.js';

/* The rules zod's schema cannot state: what depends on two settings or on the machine. */

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

export function applyRules(
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
