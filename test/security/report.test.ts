import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultConfig } from '../../src/config/schema.js';
import {
  checkAuth,
  checkCors,
  checkRateLimit,
  checkStatePermissions,
  checkTls,
  type MachineFacts,
  realMachine,
} from '../../src/security/config-checks.js';
import { checkGatewayEnvironment, checkRoot } from '../../src/security/process-checks.js';
import { buildSecurityReport, reportExitCode, type SecurityReport } from '../../src/security/report.js';
import { runCommand, type RunCommand } from '../../src/security/run-command.js';
import { REPO } from './fixture-project.js';

/** A machine whose files are a map (for /proc and the pid file); everything else is real. */
function fakeMachine(files: Record<string, string>, overrides: Partial<MachineFacts> = {}): MachineFacts {
  return {
    ...realMachine,
    readFile: (path) => {
      if (path in files) return Buffer.from(files[path] as string);
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    },
    alive: () => true,
    ...overrides,
  };
}

/** SECURITY.md "Security report". */
describe('security report: configuration checks', () => {
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'report-home-'));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('auth: keys pass; "none" warns on loopback and fails elsewhere', () => {
    assert.equal(checkAuth(defaultConfig()).status, 'pass');
    assert.equal(checkAuth(defaultConfig({ auth: 'none' })).status, 'warn');
    assert.equal(checkAuth(defaultConfig({ auth: 'none', proxy_host: '0.0.0.0' })).status, 'fail');
  });

  it('TLS: plain HTTP passes on loopback and warns elsewhere; certificates are checked for expiry and key permissions', () => {
    assert.equal(checkTls(defaultConfig(), realMachine).status, 'pass');
    assert.equal(checkTls(defaultConfig({ proxy_host: '0.0.0.0' }), realMachine).status, 'warn');
    const dir = mkdtempSync(join(tmpdir(), 'report-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          'key.pem',
          '-out',
          'cert.pem',
          '-days',
          '365',
          '-subj',
          '/CN=127.0.0.1',
        ],
        { cwd: dir, stdio: 'pipe' },
      );
      chmodSync(join(dir, 'key.pem'), 0o600);
      const config = defaultConfig({
        use_https: true,
        ssl_cert: join(dir, 'cert.pem'),
        ssl_key: join(dir, 'key.pem'),
      });
      assert.equal(checkTls(config, realMachine).status, 'pass');
      const day = 86_400_000;
      assert.equal(checkTls(config, { ...realMachine, now: () => Date.now() + 350 * day }).status, 'warn');
      assert.match(checkTls(config, { ...realMachine, now: () => Date.now() + 400 * day }).detail, /expired/);
      chmodSync(join(dir, 'key.pem'), 0o644);
      const loose = checkTls(config, realMachine);
      assert.equal(loose.status, 'fail');
      assert.match(loose.detail, /readable by others \(mode 0644\)/);
      assert.equal(
        checkTls(
          defaultConfig({
            use_https: true,
            ssl_cert: join(dir, 'missing.pem'),
            ssl_key: join(dir, 'key.pem'),
          }),
          realMachine,
        ).status,
        'fail',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('CORS: the default localhost list passes; plain-HTTP origins on other hosts warn', () => {
    assert.equal(checkCors(defaultConfig()).status, 'pass');
    assert.equal(
      checkCors(defaultConfig({ allowed_origins: ['https://ide.example.com', 'http://[::1]:3000'] })).status,
      'pass',
    );
    assert.equal(
      checkCors(defaultConfig({ allowed_origins: ['http://intranet.example.com'] })).status,
      'warn',
    );
  });

  it('rate limit: over 10 requests a second warns', () => {
    assert.equal(checkRateLimit(defaultConfig()).status, 'pass');
    assert.equal(
      checkRateLimit(defaultConfig({ rate_limit_requests: 1000, rate_limit_window: 1 })).status,
      'warn',
    );
  });

  it('state permissions: 0700/0600 pass, anything looser fails naming the path, a missing home is skipped', () => {
    const state = join(home, 'state');
    assert.equal(checkStatePermissions(state).status, 'skip');
    mkdirSync(join(state, 'logs'), { recursive: true, mode: 0o700 });
    chmodSync(state, 0o700);
    writeFileSync(join(state, 'gateway.key'), 'k', { mode: 0o600 });
    writeFileSync(join(state, 'logs', 'gateway.log'), 'l', { mode: 0o600 });
    assert.equal(checkStatePermissions(state).status, 'pass');
    chmodSync(join(state, 'logs', 'gateway.log'), 0o644);
    chmodSync(state, 0o755);
    const loose = checkStatePermissions(state);
    assert.equal(loose.status, 'fail');
    assert.match(loose.detail, /state \(0755, want 0700\)/);
    assert.match(loose.detail, /gateway\.log \(0644, want 0600\)/);
  });

  it("RUNPOD_API_KEY in the gateway's environment fails, without showing the key", () => {
    const base = {
      [join(home, 'gateway.pid')]: '4242\n',
      '/proc/4242/cmdline': 'node\0src/cli/main.ts\0gateway\0',
    };
    const holding = checkGatewayEnvironment(
      home,
      fakeMachine({ ...base, '/proc/4242/environ': 'PATH=/bin\0RUNPOD_API_KEY=rk_live_secret_1234\0' }),
    );
    assert.equal(holding.status, 'fail');
    assert.ok(!JSON.stringify(holding).includes('rk_live_secret_1234'));
    assert.equal(
      checkGatewayEnvironment(
        home,
        fakeMachine({ ...base, '/proc/4242/environ': 'PATH=/bin\0RUNPOD_LLM_HOME=/x\0' }),
      ).status,
      'pass',
    );
    assert.match(checkGatewayEnvironment(home, fakeMachine({})).detail, /not running \(no gateway\.pid\)/);
    assert.match(
      checkGatewayEnvironment(home, fakeMachine(base, { alive: () => false })).detail,
      /stale gateway\.pid/,
    );
    assert.match(
      checkGatewayEnvironment(home, fakeMachine({ ...base, '/proc/4242/cmdline': 'vim\0notes.txt\0' }))
        .detail,
      /another program/,
    );
    assert.equal(
      checkGatewayEnvironment(home, fakeMachine(base)).status,
      'unavailable',
      'an environment we may not read',
    );
  });

  it('root: a gateway or a user running as root warns', () => {
    const base = { [join(home, 'gateway.pid')]: '4242\n', '/proc/4242/cmdline': 'node\0gateway\0' };
    assert.equal(
      checkRoot(
        home,
        fakeMachine({ ...base, '/proc/4242/status': 'Name:\tnode\nUid:\t0\t0\t0\t0\n' }, { uid: 1000 }),
      ).status,
      'warn',
    );
    assert.equal(
      checkRoot(
        home,
        fakeMachine(
          { ...base, '/proc/4242/status': 'Name:\tnode\nUid:\t1000\t1000\t1000\t1000\n' },
          { uid: 0 },
        ),
      ).status,
      'pass',
    );
    assert.equal(checkRoot(home, fakeMachine({}, { uid: 0 })).status, 'warn');
    assert.equal(checkRoot(home, fakeMachine({}, { uid: 1000 })).status, 'pass');
  });
});

describe('security report: a real process', () => {
  it(
    'finds RUNPOD_API_KEY in a gateway that deleted it from process.env (Linux keeps it in /proc/<pid>/environ)',
    { skip: process.platform !== 'linux' },
    async () => {
      const home = mkdtempSync(join(tmpdir(), 'report-proc-'));
      const script =
        "delete process.env.RUNPOD_API_KEY; process.stdout.write('ready\\n'); setInterval(() => {}, 1000);";
      const start = async (env: NodeJS.ProcessEnv) => {
        const child = spawn(process.execPath, ['-e', script, 'gateway'], {
          env,
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        await new Promise((resolve) => child.stdout.once('data', resolve));
        writeFileSync(join(home, 'gateway.pid'), `${child.pid}\n`, { mode: 0o600 });
        return child;
      };
      const holding = await start({ PATH: process.env.PATH, RUNPOD_API_KEY: 'rk_test_not_a_real_key_42' });
      try {
        const item = checkGatewayEnvironment(home, realMachine);
        assert.equal(item.status, 'fail', item.detail);
        assert.ok(!item.detail.includes('rk_test_not_a_real_key_42'));
      } finally {
        holding.kill();
      }
      const clean = await start({ PATH: process.env.PATH });
      try {
        assert.equal(checkGatewayEnvironment(home, realMachine).status, 'pass');
      } finally {
        clean.kill();
      }
      await sleep(100);
      assert.match(checkGatewayEnvironment(home, realMachine).detail, /not running/);
      rmSync(home, { recursive: true, force: true });
    },
  );
});

describe('security report: the whole report', () => {
  let home: string;
  let report: SecurityReport;
  // The registry answers 405 on this machine; the recorded answer keeps the test offline and stable.
  const run: RunCommand = async (file, args, options) =>
    args[0] === 'audit'
      ? {
          code: 1,
          stdout: readFileSync(join(REPO, 'test/fixtures/audit/error-registry-405.json'), 'utf8'),
          stderr: '',
        }
      : runCommand(file, args, options);
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'report-all-'));
    chmodSync(home, 0o700);
    report = await buildSecurityReport({
      cwd: REPO,
      env: { RUNPOD_LLM_HOME: home, PATH: process.env.PATH },
      run,
      machine: fakeMachine({}, { uid: 1000 }),
      toolVersion: 'test',
    });
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('has one item per check, in order', () => {
    assert.deepEqual(
      report.items.map((i) => i.id),
      [
        'supply.sbom',
        'supply.audit',
        'supply.licenses',
        'gateway.auth',
        'gateway.tls',
        'gateway.cors',
        'gateway.rate_limit',
        'state.permissions',
        'process.not_root',
        'gateway.no_runpod_key',
        'pod.closed_routes',
      ],
    );
    assert.equal(report.project.name, 'runpod-llm-manager');
  });

  it("reports the audit as unavailable with npm's reason, never as clean, and exits 9", () => {
    const audit = report.items.find((i) => i.id === 'supply.audit');
    assert.equal(audit?.status, 'unavailable');
    assert.match(audit?.detail ?? '', /^audit unavailable: 405 Method Not Allowed/);
    assert.equal(report.summary.fail, 0);
    assert.equal(reportExitCode(report), 9);
  });

  it('passes the licences and the default configuration', () => {
    for (const id of [
      'supply.licenses',
      'gateway.auth',
      'gateway.tls',
      'gateway.cors',
      'gateway.rate_limit',
      'state.permissions',
      'process.not_root',
    ]) {
      assert.equal(report.items.find((i) => i.id === id)?.status, 'pass', id);
    }
    assert.equal(report.items.find((i) => i.id === 'gateway.no_runpod_key')?.status, 'skip');
  });

  it('fails (exit 10) on an invalid configuration or a failed check', async () => {
    const bad = await buildSecurityReport({
      cwd: REPO,
      env: { RUNPOD_LLM_HOME: home, RATE_LIMIT_REQUESTS: 'lots' },
      run,
      machine: fakeMachine({}, { uid: 1000 }),
    });
    assert.equal(bad.items.find((i) => i.id === 'config')?.status, 'fail');
    assert.equal(reportExitCode(bad), 10);
    assert.equal(
      reportExitCode({ ...bad, summary: { pass: 3, warn: 2, fail: 0, unavailable: 0, skip: 1 } }),
      0,
      'warnings alone pass',
    );
  });
});
