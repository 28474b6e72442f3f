import { createHmac, randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { expandIPv6 } from '../gateway/rate-limit/client-key.js';
import type { Clock } from '../shared/clock.js';
import { readTextIfExists, writePrivateFile } from '../shared/secret-file.js';

/**
 * What persisted log lines keep of a client address (`log_client_ip`):
 * - `full`: the address as seen (after `trusted_proxies`).
 * - `truncated` (default): the network only, IPv4 /24 (`203.0.113.0/24`), IPv6 /48
 *   (`2001:db8:7::/48`). Enough to block a network or tell local from remote traffic.
 * - `hashed`: `h:` + 16 hex digits of HMAC-SHA256 under a key that changes every UTC day and is
 *   overwritten (not kept) when the day changes: one day's lines correlate (same client, same
 *   hash), nobody can reverse a hash once its day is over (an IPv4 space is small enough to try
 *   every address while the key exists).
 */
export type ClientIpMode = 'full' | 'truncated' | 'hashed';

const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** IPv4 /24, IPv6 /48 (IPv4-mapped IPv6 counts as IPv4). Anything else (a socket path, junk) becomes `unknown`. */
export function truncateIp(ip: string): string {
  let v4 = ip;
  if (ip.includes(':')) {
    if (ip.startsWith('::ffff:') && DOTTED_QUAD.test(ip.slice(7))) v4 = ip.slice(7);
    else if (isIPv6(ip.split('%')[0] as string)) return `${expandIPv6(ip).slice(0, 3).join(':')}::/48`;
    else return 'unknown';
  }
  // A plain pattern, not net.isIPv4 (a much longer expression): this runs per logged line.
  if (!DOTTED_QUAD.test(v4)) return 'unknown';
  return `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
}

const DAY_MS = 86_400_000;

/** The file (0600, in the state directory) holding today's hashing key. */
export function ipKeyFile(home: string): string {
  return join(home, 'log-ip-key.json');
}

/**
 * Today's key: read from the state directory, or made (random, 32 bytes) and written over the
 * previous day's, so every process of one home hashes alike within a day.
 */
function dayKey(home: string, day: string): Buffer {
  const path = ipKeyFile(home);
  try {
    const stored = JSON.parse(readTextIfExists(path) ?? 'null') as { day?: unknown; key?: unknown } | null;
    if (stored !== null && stored.day === day && typeof stored.key === 'string' && stored.key.length === 64)
      return Buffer.from(stored.key, 'hex');
  } catch {
    // unreadable: replaced below
  }
  const key = randomBytes(32);
  writePrivateFile(path, `${JSON.stringify({ day, key: key.toString('hex') })}\n`);
  return key;
}

/** How many distinct addresses a day's hash cache holds (a flood of addresses cannot grow it). */
const HASH_CACHE_MAX = 4096;

/**
 * The function a logger applies to every `ip` field, or undefined for `full` (no work at all on
 * the hot path). `hashed` needs the state directory for its key.
 *
 * @example
 *   const mask = clientIpMasker('truncated'); mask?.('203.0.113.57') // '203.0.113.0/24'
 */
export function clientIpMasker(
  mode: ClientIpMode,
  options: { home?: string; clock?: Clock } = {},
): ((ip: unknown) => unknown) | undefined {
  if (mode === 'full') return undefined;
  if (mode === 'truncated') {
    const cache = new Map<string, string>();
    return (ip) => {
      if (typeof ip !== 'string') return ip;
      let out = cache.get(ip);
      if (out === undefined) {
        out = truncateIp(ip);
        if (cache.size >= HASH_CACHE_MAX) cache.clear();
        cache.set(ip, out);
      }
      return out;
    };
  }
  const home = options.home;
  if (home === undefined)
    throw new Error('log_client_ip "hashed" needs the state directory (RUNPOD_LLM_HOME) for its key');
  const clock = options.clock ?? { now: () => Date.now() };
  let day = '';
  let key: Buffer = Buffer.alloc(0);
  let dayEnds = 0;
  const cache = new Map<string, string>();
  return (ip) => {
    if (typeof ip !== 'string') return ip;
    const now = clock.now();
    if (now >= dayEnds) {
      const start = Math.floor(now / DAY_MS) * DAY_MS;
      day = new Date(start).toISOString().slice(0, 10);
      dayEnds = start + DAY_MS;
      key = dayKey(home, day);
      cache.clear();
    }
    let out = cache.get(ip);
    if (out === undefined) {
      out = `h:${createHmac('sha256', key).update(ip).digest('hex').slice(0, 16)}`;
      if (cache.size >= HASH_CACHE_MAX) cache.clear();
      cache.set(ip, out);
    }
    return out;
  };
}
