/**
 * Microbenchmarks behind the hot-path suggestions in bench/RESULTS.md, so the figures there can
 * be re-measured before and after a change (no assertions; the numbers are this machine's).
 *
 *   node --import tsx bench/micro/hot-path.ts
 */
import { createHash, hash, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import pino from 'pino';
import { REDACT_PATHS } from '../../src/shared/logger.js';

function bench(name: string, n: number, f: () => unknown): void {
  for (let i = 0; i < n / 10; i++) f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  console.log(`${name.padEnd(58)} ${(((performance.now() - t0) * 1000) / n).toFixed(3).padStart(8)} µs`);
}

// 1. The access line through the full redaction vs a child keeping only the top-level paths.
const sink = pino.destination({ dest: '/dev/null', sync: true });
const root = pino(
  {
    base: null,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  },
  sink,
);
const access = root.child(
  {},
  { redact: { paths: REDACT_PATHS.filter((p) => !p.startsWith('*.')), censor: '[redacted]' } },
);
const line = () => ({
  msg: 'request',
  reqId: 'abc123-1f',
  method: 'POST',
  path: '/v1/chat/completions',
  status: 200,
  durationMs: 0.412,
  upstreamMs: 0.201,
  bytes: 307,
  ip: '127.0.0.1',
  keyId: 'key_831991',
  tokensIn: 12,
  tokensOut: 9,
});
bench('access line, REDACT_PATHS (wildcards)', 200_000, () => root.info(line()));
bench('access line, child with top-level paths only', 200_000, () => access.info(line()));

// 2. The per-request abort handle.
bench('new AbortController() + .signal', 1_000_000, () => new AbortController().signal);
bench('new EventEmitter() (undici accepts it as `signal`)', 1_000_000, () => new EventEmitter());

// 3. The bearer key digest.
const key = 'bench-gateway-key-0123456789abcdef';
const digest = createHash('sha256').update(key).digest();
bench("createHash('sha256').update().digest() + timingSafeEqual", 500_000, () =>
  timingSafeEqual(createHash('sha256').update(key).digest(), digest),
);
bench("crypto.hash('sha256', v, 'buffer') + timingSafeEqual", 500_000, () =>
  timingSafeEqual(hash('sha256', key, 'buffer'), digest),
);

// 4. The client key of an IPv4 peer (a fresh string each time, as request.ip is).
let n = 0;
const peer = () => `127.0.${(n++ >> 8) & 255}.${n & 255}`;
bench('isIPv6(ipv4 peer)', 1_000_000, () => isIPv6(peer()));
bench("ipv4 peer .includes(':')", 1_000_000, () => peer().includes(':'));
