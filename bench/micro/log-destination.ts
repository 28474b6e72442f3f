/**
 * The access line's cost with each persisted-log destination: pino.destination (the
 * detached gateway's log before rotation) vs the rotating log (src/logs/log-files.ts), with and
 * without the client-IP masking. Lines are logged 50 per event-loop turn (a busy gateway);
 * reported: main-thread CPU per line (process.cpuUsage, user+system, which includes the writes
 * the event loop waits on) and wall time, each the median of 5 rounds of 50,000 lines.
 *
 *   node --import tsx bench/micro/log-destination.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type DestinationStream } from 'pino';
import { clientIpMasker } from '../../src/logs/client-ip.js';
import { openRotatingLog } from '../../src/logs/log-files.js';
import { createLogger, flatLineLogger } from '../../src/shared/logger.js';

const LINES = 50_000;
const PER_TURN = 50;
const dir = mkdtempSync(join(tmpdir(), 'log-bench-'));
let peer = 0;
const line = (i: number) => ({
  msg: 'request',
  reqId: `req-${i}`,
  method: 'POST',
  path: '/v1/chat/completions',
  status: 200,
  durationMs: 0.412,
  upstreamMs: 0.201,
  bytes: 307,
  ip: `203.0.${(peer >> 8) & 255}.${peer++ & 255}`,
  keyId: 'key_831991',
  tokensIn: 12,
  tokensOut: 9,
});

async function round(
  make: () => { dest: DestinationStream; close: () => Promise<void> },
  ip?: (ip: unknown) => unknown,
): Promise<{ cpu: number; wall: number }> {
  const { dest, close } = make();
  const access = flatLineLogger(
    createLogger({ destination: dest, ...(ip === undefined ? {} : { clientIp: ip }) }),
  );
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < LINES; i++) {
    access.info(line(i));
    if (i % PER_TURN === 0) await new Promise((r) => setImmediate(r));
  }
  await close();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / LINES, wall: ((performance.now() - t0) * 1000) / LINES };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const cases: Array<
  [
    string,
    () => { dest: DestinationStream; close: () => Promise<void> },
    ((ip: unknown) => unknown) | undefined,
  ]
> = [
  [
    'pino.destination (append, sync: false), ip full',
    () => {
      const d = pino.destination({ dest: join(dir, `plain-${peer}.log`), sync: false, mkdir: true });
      return {
        dest: d,
        close: () =>
          new Promise<void>((r) => {
            d.once('close', () => r());
            d.end();
          }),
      };
    },
    undefined,
  ],
  [
    'rotating log (10 MB x 5), ip full',
    () => {
      const l = openRotatingLog(join(dir, `rot-${peer}`, 'gateway.log'), {
        maxBytes: 10 << 20,
        maxFiles: 5,
        maxAgeMs: 14 * 86_400_000,
      });
      return { dest: l, close: () => l.close() };
    },
    undefined,
  ],
  [
    'rotating log (10 MB x 5), ip truncated',
    () => {
      const l = openRotatingLog(join(dir, `rot-${peer}`, 'gateway.log'), {
        maxBytes: 10 << 20,
        maxFiles: 5,
        maxAgeMs: 14 * 86_400_000,
      });
      return { dest: l, close: () => l.close() };
    },
    clientIpMasker('truncated'),
  ],
  [
    'rotating log (10 MB x 5), ip hashed',
    () => {
      const l = openRotatingLog(join(dir, `rot-${peer}`, 'gateway.log'), {
        maxBytes: 10 << 20,
        maxFiles: 5,
        maxAgeMs: 14 * 86_400_000,
      });
      return { dest: l, close: () => l.close() };
    },
    clientIpMasker('hashed', { home: dir }),
  ],
  [
    'rotating log (1 MB x 5: rotates every ~6,000 lines), ip truncated',
    () => {
      const l = openRotatingLog(join(dir, `rot-${peer}`, 'gateway.log'), {
        maxBytes: 1 << 20,
        maxFiles: 5,
        maxAgeMs: 14 * 86_400_000,
      });
      return { dest: l, close: () => l.close() };
    },
    clientIpMasker('truncated'),
  ],
];

for (const [name, make, ip] of cases) {
  const rounds = [];
  for (let r = 0; r < 5; r++) rounds.push(await round(make, ip));
  console.log(
    `${name.padEnd(70)} cpu ${median(rounds.map((x) => x.cpu))
      .toFixed(2)
      .padStart(7)} µs/line   wall ${median(rounds.map((x) => x.wall))
      .toFixed(2)
      .padStart(7)} µs/line`,
  );
}
rmSync(dir, { recursive: true, force: true });

// The masking alone, per call: one client (the cache hits) and a new address every call.
function perCall(name: string, f: (ip: string) => unknown, ips: () => string): void {
  const n = 200_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f(ips());
  console.log(`${name.padEnd(70)} ${(((performance.now() - t0) * 1000) / n).toFixed(3).padStart(7)} µs/call`);
}
const home = mkdtempSync(join(tmpdir(), 'log-bench-key-'));
let k = 0;
const fresh = () => `198.51.${(k >> 8) & 255}.${k++ & 255}`;
for (const mode of ['truncated', 'hashed'] as const) {
  const mask = clientIpMasker(mode, { home }) as (ip: unknown) => unknown;
  perCall(`${mode}, one client`, mask, () => '203.0.113.57');
  perCall(`${mode}, a new address each call`, mask, fresh);
}
rmSync(home, { recursive: true, force: true });
