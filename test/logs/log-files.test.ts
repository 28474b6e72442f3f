import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gatewayLogger } from '../../src/cli/commands/gateway.js';
import { defaultConfig } from '../../src/config/schema.js';
import { clientIpMasker, ipKeyFile, truncateIp } from '../../src/logs/client-ip.js';
import { expireLogFiles, openRotatingLog } from '../../src/logs/log-files.js';
import { ManualClock } from '../../src/shared/clock.js';
import { flatLineLogger } from '../../src/shared/logger.js';

const DAY = 86_400_000;
const homes: string[] = [];
function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'logs-'));
  homes.push(home);
  return home;
}
after(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function files(dir: string): Array<{ name: string; bytes: number; mode: number; text: string }> {
  return readdirSync(dir).map((name) => {
    const st = statSync(join(dir, name));
    return { name, bytes: st.size, mode: st.mode & 0o777, text: readFileSync(join(dir, name), 'utf8') };
  });
}

describe('persisted logs rotate, expire and keep no full client address', () => {
  it('200,000 access lines through the detached gateway logger stay within log_max_files × log_max_bytes, 0600, no full IPv4 address', async () => {
    const home = tempHome();
    const logDir = join(home, 'logs');
    // The logger the detached gateway builds: `up` sets LOG_FILE=<home>/logs/gateway.log.
    const config = defaultConfig({
      home,
      log_file: join(logDir, 'gateway.log'),
      log_max_bytes: 512 * 1024,
      log_max_files: 4,
    });
    assert.equal(config.log_client_ip, 'truncated', 'the default');
    const log = gatewayLogger(config);
    const access = flatLineLogger(log.logger); // what src/gateway/hooks.ts writes each request with
    const peers = Array.from({ length: 250 }, (_, i) => `203.0.${113 + (i % 3)}.${i + 1}`);
    const v6 = '2001:db8:85a3:8d3:1319:8a2e:370:7348';
    const N = 200_000;
    for (let i = 0; i < N; i++) {
      const ip =
        i % 10 === 9
          ? v6
          : i % 10 === 8
            ? `::ffff:${peers[i % peers.length] as string}`
            : (peers[i % peers.length] as string);
      access.info({
        msg: 'request',
        reqId: `req-${i}`,
        method: 'POST',
        path: '/v1/chat/completions',
        status: 200,
        durationMs: 1.234,
        upstreamMs: 1.1,
        bytes: 307,
        ip,
        keyId: 'key_831991',
        tokensIn: 12,
        tokensOut: 9,
      });
      if (i % 1000 === 0)
        log.logger.warn(
          { event: 'auth_failed', reqId: `req-${i}`, ip, path: '/v1/models', status: 401 },
          'security event',
        );
      if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    access.info({ msg: 'request', reqId: 'the-last-one', ip: '198.51.100.77' });
    await log.close();

    const kept = files(logDir);
    const total = kept.reduce((sum, f) => sum + f.bytes, 0);
    // 200,000 lines are ~60 MB: far more than the bound, so rotation and the count limit did the work.
    assert.ok(kept.length <= 4, `at most log_max_files files: ${kept.map((f) => f.name).join(', ')}`);
    assert.ok(total <= 4 * (512 * 1024 + 64 * 1024), `within the byte bound: ${total}`);
    assert.ok(total > 3 * 512 * 1024, `the newest lines are kept, not dropped: ${total}`);
    assert.deepEqual(kept.map((f) => f.name).sort(), [
      'gateway.log',
      'gateway.log.1',
      'gateway.log.2',
      'gateway.log.3',
    ]);
    for (const f of kept) assert.equal(f.mode, 0o600, f.name);
    assert.equal(statSync(logDir).mode & 0o777, 0o700);
    // The newest line is in the current file, or in .1 when that line's write completed a file.
    assert.match(
      kept
        .filter((f) => f.name === 'gateway.log' || f.name === 'gateway.log.1')
        .map((f) => f.text)
        .join(''),
      /"reqId":"the-last-one".*"ip":"198\.51\.100\.0\/24"/,
    );

    const all = kept.map((f) => f.text).join('');
    for (const peer of [...peers, '198.51.100.77'])
      assert.ok(
        !all.includes(`"${peer}"`) && !all.includes(`:${peer}"`),
        `full address ${peer} in a log file`,
      );
    for (const match of all.matchAll(/\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(\/\d+)?/g))
      assert.match(match[0], /\.0\/24$/, `only /24 networks: ${match[0]}`);
    assert.ok(!all.includes('1319:8a2e'), 'no full IPv6 address');
    assert.match(all, /"ip":"2001:db8:85a3::\/48"/);
    assert.match(
      all,
      /"event":"auth_failed".*"ip":"203\.0\.11[345]\.0\/24"/,
      'security events keep the network',
    );
    assert.ok(
      all.split('\n').every((line) => line === '' || JSON.parse(line) !== undefined),
      'whole JSON lines, none torn by a rotation',
    );
  });

  it('deletes rotated files older than log_max_age and tightens files to 0600', () => {
    const home = tempHome();
    const file = join(home, 'logs', 'watchdog.log');
    const log = openRotatingLog(file, { maxBytes: 4096, maxFiles: 5, maxAgeMs: 14 * DAY });
    const now = Date.now();
    writeFileSync(`${file}.1`, 'recent\n', { mode: 0o644 });
    writeFileSync(`${file}.2`, 'old\n', { mode: 0o600 });
    writeFileSync(join(home, 'logs', 'watchdog.log.bak'), 'not ours\n');
    utimesSync(`${file}.2`, new Date(now - 15 * DAY), new Date(now - 15 * DAY));
    assert.deepEqual(log.expire(now), [`${file}.2`]);
    assert.equal(statSync(`${file}.1`).mode & 0o777, 0o600);
    assert.deepEqual(
      readdirSync(join(home, 'logs'))
        .filter((f) => f !== 'watchdog.log')
        .sort(),
      ['watchdog.log.1', 'watchdog.log.bak'],
    );
    assert.deepEqual(
      expireLogFiles(file, 14 * DAY, now + 15 * DAY),
      [`${file}.1`],
      'the same sweep later takes the next one',
    );
    return log.close();
  });

  it('refuses settings that cannot bound anything', () => {
    const home = tempHome();
    assert.throws(
      () => openRotatingLog(join(home, 'x.log'), { maxBytes: 4096, maxFiles: 1, maxAgeMs: DAY }),
      /log_max_files must be at least 2/,
    );
    assert.throws(() => defaultConfig({ log_max_files: 1 }));
    assert.throws(() => defaultConfig({ log_max_age: '14' }));
    assert.equal(defaultConfig({ log_max_age: '30d' }).log_max_age, 30 * DAY);
  });
});

describe('log_client_ip', () => {
  it('truncated: IPv4 /24, IPv6 /48, mapped IPv4 as IPv4, anything else unknown', () => {
    assert.equal(truncateIp('203.0.113.57'), '203.0.113.0/24');
    assert.equal(truncateIp('::ffff:203.0.113.57'), '203.0.113.0/24');
    assert.equal(truncateIp('2001:db8:85a3::8a2e:370:7348'), '2001:db8:85a3::/48');
    assert.equal(truncateIp('::1'), '0:0:0::/48');
    assert.equal(truncateIp('fe80::1%eth0'), 'fe80:0:0::/48');
    assert.equal(truncateIp('not-an-ip'), 'unknown');
  });

  it('full: no masking at all', () => {
    assert.equal(clientIpMasker('full'), undefined);
  });

  it('hashed: the same address hashes alike within a UTC day and differently the next; the key file is 0600 and replaced daily', () => {
    const home = tempHome();
    const clock = new ManualClock(Date.parse('2026-12-02T10:00:00Z'));
    const hash = clientIpMasker('hashed', { home, clock });
    assert.ok(hash !== undefined);
    const a = hash('203.0.113.57') as string;
    assert.match(a, /^h:[0-9a-f]{16}$/);
    assert.equal(hash('203.0.113.57'), a);
    assert.notEqual(hash('203.0.113.58'), a);
    // Another process of the same home (the key is on disk) agrees.
    assert.equal(clientIpMasker('hashed', { home, clock })?.('203.0.113.57'), a);
    assert.equal(statSync(ipKeyFile(home)).mode & 0o777, 0o600);
    const firstKey = readFileSync(ipKeyFile(home), 'utf8');
    clock.advance(DAY);
    const b = hash('203.0.113.57') as string;
    assert.notEqual(b, a, 'a new day, a new key');
    assert.notEqual(readFileSync(ipKeyFile(home), 'utf8'), firstKey, "yesterday's key is gone");
    assert.ok(!readFileSync(ipKeyFile(home), 'utf8').includes('203.0.113'));
  });

  it('hashed needs the state directory', () => {
    assert.throws(() => clientIpMasker('hashed'), /needs the state directory/);
  });
});

describe('truncateIp refuses what is not an address', () => {
  it('out-of-range octets and short forms are unknown', () => {
    assert.equal(truncateIp('256.1.1.1'), 'unknown');
    assert.equal(truncateIp('1.2.3'), 'unknown');
    assert.equal(truncateIp('01.2.3.4'), 'unknown');
    assert.equal(truncateIp('10.0.0.255'), '10.0.0.0/24');
  });
});
