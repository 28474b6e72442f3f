import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import { readDaemon } from '../../src/daemons/detached-process.js';
import { readGatewayUrl } from '../../src/daemons/gateway-daemon.js';
import { isProcessAlive } from '../../src/state/lock.js';
import { cli, killAll, until } from './cli-rig.js';

const RUNPOD_KEY = 'rpa_service_test_key_0123456789';
const HF = 'hf_service_test_token_0123456789';
const GW_KEY = 'gwk_service_test_key_0123456789';

function hasSystemdAnalyze(): boolean {
  return spawnSync('systemd-analyze', ['--version']).status === 0;
}

/** `KEY=value` lines of an environment file, as systemd's EnvironmentFile= reads them. */
function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(?:"(.*)"|(.*))$/.exec(l);
    if (m?.[1] !== undefined) out[m[1]] = m[2] ?? m[3] ?? '';
  }
  return out;
}

/** What systemd would run: ExecStart split into words (test paths have no spaces) and the environment. */
function unitCommand(unitText: string): {
  argv: string[];
  env: Record<string, string>;
  envFile: string;
  unset: string[];
  stdout: string;
} {
  const get = (key: string): string[] =>
    unitText
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1));
  const env: Record<string, string> = {};
  for (const e of get('Environment')) {
    const [k, ...v] = e.split('=');
    if (k !== undefined) env[k] = v.join('=');
  }
  return {
    argv: (get('ExecStart')[0] ?? '').split(' '),
    env,
    envFile: (get('EnvironmentFile')[0] ?? '').replace(/^-/, ''),
    unset: (get('UnsetEnvironment')[0] ?? '').split(' ').filter(Boolean),
    stdout: (get('StandardOutput')[0] ?? '').replace(/^append:/, ''),
  };
}

describe('runpod-llm service install|uninstall|status', () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  let emulator: Emulator;
  const pids = new Set<number>();

  before(async () => {
    emulator = await startEmulator({
      apiKey: RUNPOD_KEY,
      schedule: { provisioningMs: 100, startingMs: 100, loadMs: 200 },
    });
    root = mkdtempSync(join(tmpdir(), 'cli-service-'));
    mkdirSync(join(root, 'user'));
    env = {
      HOME: join(root, 'user'),
      USER: 'tester',
      RUNPOD_LLM_HOME: join(root, 'home'),
      RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
      RUNPOD_API_KEY: RUNPOD_KEY,
      RUNPOD_API_URL: emulator.apiUrl,
      HF_TOKEN: HF,
      GATEWAY_API_KEYS: GW_KEY,
      HOST: '127.0.0.1',
      PORT: '0',
    };
  });
  after(async () => {
    killAll(pids);
    await emulator.close();
    rmSync(root, { recursive: true, force: true });
  });

  const unitDir = (): string => join(root, 'user', '.config', 'systemd', 'user');

  it('install writes systemd user units with no secret in them, that systemd-analyze accepts, and 0600 environment files', async (t) => {
    const run = await cli(['service', 'install', '--kind', 'systemd', '--no-start'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /not started \(--no-start\); to start: systemctl --user daemon-reload; systemctl --user enable --now runpod-llm-watchdog\.service runpod-llm-gateway\.service/,
    );
    assert.match(run.stderr, /loginctl enable-linger tester/);
    assert.match(
      run.stderr,
      /warning: the gateway port is 0 \(any free port\): the service gateway gets a new port at each start/,
    );

    const watchdog = readFileSync(join(unitDir(), 'runpod-llm-watchdog.service'), 'utf8');
    const gateway = readFileSync(join(unitDir(), 'runpod-llm-gateway.service'), 'utf8');
    for (const unit of [watchdog, gateway]) {
      for (const secret of [RUNPOD_KEY, HF, GW_KEY])
        assert.ok(!unit.includes(secret), 'a secret in a unit file');
      assert.match(unit, /^Restart=always$/m);
      assert.match(unit, /^StartLimitIntervalSec=0$/m);
      assert.match(unit, /^WantedBy=default\.target$/m);
      assert.match(unit, /^UMask=0077$/m);
      assert.match(unit, new RegExp(`^Environment=RUNPOD_LLM_HOME=${join(root, 'home')}$`, 'm'));
    }
    assert.match(watchdog, /^ExecStart=\S+node .*\/src\/cli\/main\.ts watch --loop --service$/m);
    assert.match(gateway, /^ExecStart=\S+node .*\/src\/cli\/main\.ts gateway --service$/m);
    assert.match(gateway, /^UnsetEnvironment=RUNPOD_API_KEY HF_TOKEN /m);
    assert.doesNotMatch(watchdog, /UnsetEnvironment/);

    // The secrets live in 0600 files in a 0700 directory; the gateway's holds no RunPod key.
    const wEnv = join(root, 'home', 'service', 'watchdog.env');
    const gEnv = join(root, 'home', 'service', 'gateway.env');
    assert.equal(statSync(join(root, 'home', 'service')).mode & 0o777, 0o700);
    for (const f of [wEnv, gEnv]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    const w = readEnvFile(wEnv);
    const g = readEnvFile(gEnv);
    assert.equal(w.RUNPOD_API_KEY, RUNPOD_KEY);
    assert.equal(w.HF_TOKEN, HF);
    assert.equal(w.GATEWAY_API_KEYS, undefined, 'the watchdog needs no gateway key');
    assert.equal(g.GATEWAY_API_KEYS, GW_KEY);
    assert.equal(g.RUNPOD_API_KEY, undefined);
    assert.equal(g.HF_TOKEN, undefined);
    assert.equal(g.PORT, '0');

    if (!hasSystemdAnalyze()) {
      t.diagnostic('systemd-analyze is not installed: unit verification not run');
      return;
    }
    const runtime = join(root, 'runtime');
    mkdirSync(runtime, { mode: 0o700 });
    const verify = spawnSync(
      'systemd-analyze',
      [
        '--user',
        'verify',
        join(unitDir(), 'runpod-llm-watchdog.service'),
        join(unitDir(), 'runpod-llm-gateway.service'),
      ],
      { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: runtime } },
    );
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warning either (unknown keys only warn)');
  });

  it('status --json reports the files, their environment files and the daemons', async () => {
    const run = await cli(['service', 'status', '--kind', 'systemd', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const s = JSON.parse(run.stdout) as {
      kind: string;
      services: Array<{
        service: string;
        installed: boolean;
        current: boolean;
        envFile: { mode: string } | null;
        daemon: unknown;
      }>;
    };
    assert.equal(s.kind, 'systemd');
    assert.deepEqual(
      s.services.map((x) => [x.service, x.installed, x.current, x.envFile?.mode, x.daemon]),
      [
        ['watchdog', true, true, '0600', null],
        ['gateway', true, true, '0600', null],
      ],
    );
    assert.ok(!run.stdout.includes(RUNPOD_KEY));
  });

  it('what the gateway unit runs: announces itself, `down` leaves it to the service, and it never sees the RunPod key', async () => {
    const unit = unitCommand(readFileSync(join(unitDir(), 'runpod-llm-gateway.service'), 'utf8'));
    // The user manager's environment may hold the RunPod key: the unit unsets it.
    const childEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      RUNPOD_API_KEY: RUNPOD_KEY,
      HF_TOKEN: HF,
      ...unit.env,
      ...readEnvFile(unit.envFile),
    };
    for (const name of unit.unset) delete childEnv[name];
    const [command, ...args] = unit.argv;
    const child = spawn(command ?? '', args, { env: childEnv, stdio: 'ignore' });
    if (child.pid !== undefined) pids.add(child.pid);
    const home = join(root, 'home');
    const info = await until('the service gateway to announce itself', () => {
      const d = readDaemon(home, 'gateway');
      return d?.running === true && readGatewayUrl(home) !== undefined ? d : undefined;
    });
    assert.equal(info.pid, child.pid);
    assert.equal(info.service, true);
    const url = readGatewayUrl(home) ?? '';
    // The key from the gateway's environment file is the one in force (no pod yet: 503, not 401).
    assert.equal((await fetch(`${url}/models`)).status, 401);
    assert.equal(
      (await fetch(`${url}/models`, { headers: { authorization: `Bearer ${GW_KEY}` } })).status,
      503,
    );
    assert.ok(!readFileSync(`/proc/${info.pid}/environ`, 'utf8').includes(RUNPOD_KEY));

    const doctor = JSON.parse((await cli(['doctor', '--json'], env)).stdout) as {
      checks: Array<{ id: string; status: string; summary: string }>;
    };
    const gw = doctor.checks.find((c) => c.id === 'gateway');
    assert.equal(gw?.status, 'ok', gw?.summary);
    assert.match(
      gw?.summary ?? '',
      new RegExp(
        `^running \\(pid ${info.pid}, as a service\\) at ${url.replace(/[.]/g, '\\.')}: health \\w+$`,
      ),
    );

    // `up` serves its pod through the service's gateway instead of starting its own.
    const upEnv = {
      ...env,
      RUNPOD_POD_URL_TEMPLATE: emulator.podUrlTemplate,
      RUNPOD_LLM_READINESS_POLL: '100ms',
    };
    const up = await cli(['up', '--no-watchdog'], upEnv);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, new RegExp(`gateway: already running \\(pid ${info.pid};`));
    assert.match(up.stdout, new RegExp(`^Endpoint: +${url.replace(/[.]/g, '\\.')}$`, 'm'));
    // (The gateway reads the routes from the state once a second.)
    const answer = await until('the service gateway to serve the pod', async () => {
      const chat = await fetch(`${url}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${GW_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'Qwen/Qwen2.5-Coder-7B-Instruct',
          messages: [{ role: 'user', content: 'via the service' }],
        }),
      });
      return chat.status === 200
        ? ((await chat.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message
            .content
        : (await chat.body?.cancel(), undefined);
    });
    assert.match(answer, /via the service/);

    const down = await cli(['down'], env);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /: terminated/);
    assert.equal(emulator.pods.list().length, 0);
    assert.match(
      down.stderr,
      /gateway: left running \(a service runs it; `runpod-llm service uninstall` removes it\)/,
    );
    assert.ok(isProcessAlive(info.pid));
    assert.equal(readGatewayUrl(home), url);
    child.kill('SIGTERM');
    await until('the service gateway to stop', () => (isProcessAlive(info.pid) ? undefined : true), 15_000);
    assert.equal(readDaemon(home, 'gateway'), null, 'it removes its own pid file');
  });

  it('what the watchdog unit runs keeps running with nothing to watch', async () => {
    const home = join(root, 'home');
    const unit = unitCommand(readFileSync(join(unitDir(), 'runpod-llm-watchdog.service'), 'utf8'));
    const [command, ...args] = unit.argv;
    // StandardOutput=append:<log>, as systemd does.
    const log = unit.stdout;
    mkdirSync(join(home, 'logs'), { recursive: true });
    const fd = openSync(log, 'a', 0o600);
    const child = spawn(command ?? '', [...args, '--interval', '200ms'], {
      env: { PATH: process.env.PATH, ...unit.env, ...readEnvFile(unit.envFile) },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    if (child.pid !== undefined) pids.add(child.pid);
    await until('the service watchdog to start', () =>
      readDaemon(home, 'watchdog')?.service === true ? true : undefined,
    );
    // Many 200 ms passes with no run: still there.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.ok(isProcessAlive(child.pid ?? 0), 'still running');
    const text = readFileSync(log, 'utf8');
    assert.match(text, /"msg":"watchdog started"/);
    assert.doesNotMatch(text, /watchdog stops|RunPod unreachable/);
    // The same loop without --service (as `up` starts it) ends once there is nothing to watch.
    // (Not spawnSync: the emulator answering its list calls runs in this process.)
    const plain = spawn(command ?? '', [...args.filter((a) => a !== '--service'), '--interval', '200ms'], {
      env: {
        PATH: process.env.PATH,
        ...unit.env,
        ...readEnvFile(unit.envFile),
        RUNPOD_LLM_HOME: join(root, 'other-home'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (plain.pid !== undefined) pids.add(plain.pid);
    let output = '';
    plain.stdout.on('data', (b: Buffer) => (output += b.toString()));
    plain.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const [exitCode] = (await once(plain, 'exit')) as [number | null];
    assert.equal(exitCode, 0, output);
    assert.match(output, /no active run and no pod left: the watchdog stops/);
    child.kill('SIGTERM');
    await until('the watchdog to stop', () => (isProcessAlive(child.pid ?? 0) ? undefined : true), 15_000);
  });

  it('launchd agents: RunAtLoad and KeepAlive, the key read by node from the 0600 file, a plist python parses', async () => {
    const run = await cli(['service', 'install', '--kind', 'launchd', '--dry-run', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const plan = JSON.parse(run.stdout) as {
      files: Array<{ service: string; path: string; content: string }>;
      envFiles: Array<{ service: string; names: string[] }>;
    };
    assert.deepEqual(
      plan.files.map((f) => f.path),
      [
        join(root, 'user', 'Library', 'LaunchAgents', 'com.runpod-llm.watchdog.plist'),
        join(root, 'user', 'Library', 'LaunchAgents', 'com.runpod-llm.gateway.plist'),
      ],
    );
    assert.deepEqual(
      plan.envFiles.find((e) => e.service === 'gateway')?.names.includes('RUNPOD_API_KEY'),
      false,
    );
    assert.ok(!existsSync(join(root, 'user', 'Library')), '--dry-run writes nothing');
    for (const f of plan.files) {
      for (const secret of [RUNPOD_KEY, HF, GW_KEY]) assert.ok(!f.content.includes(secret));
      const parsed = JSON.parse(
        execFileSync(
          'python3',
          ['-c', 'import plistlib,sys,json; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))'],
          { input: f.content, encoding: 'utf8' },
        ),
      ) as {
        Label: string;
        ProgramArguments: string[];
        RunAtLoad: boolean;
        KeepAlive: boolean;
        EnvironmentVariables: Record<string, string>;
        Umask: number;
      };
      assert.equal(parsed.Label, `com.runpod-llm.${f.service}`);
      assert.equal(parsed.RunAtLoad, true);
      assert.equal(parsed.KeepAlive, true);
      assert.equal(parsed.Umask, 0o077);
      assert.equal(
        parsed.ProgramArguments[1],
        `--env-file=${join(root, 'home', 'service', `${f.service}.env`)}`,
      );
      assert.deepEqual(
        parsed.ProgramArguments.slice(-2),
        f.service === 'watchdog' ? ['--loop', '--service'] : ['gateway', '--service'],
      );
      assert.deepEqual(Object.keys(parsed.EnvironmentVariables).sort(), [
        'RUNPOD_LLM_CONFIG',
        'RUNPOD_LLM_HOME',
      ]);
    }
    // A launchd agent has no other way to get the key: install refuses without one.
    const noKey = await cli(['service', 'install', '--kind', 'launchd', '--no-start'], {
      ...env,
      RUNPOD_API_KEY: '',
    });
    assert.equal(noKey.code, 4);
    assert.match(noKey.stderr, /^error: RUNPOD_API_KEY is not set/m);
    assert.ok(!existsSync(join(root, 'user', 'Library', 'LaunchAgents', 'com.runpod-llm.watchdog.plist')));
  });

  it('uninstall removes the unit files and the environment files', async () => {
    const run = await cli(['service', 'uninstall', '--kind', 'systemd'], env);
    assert.equal(run.code, 0, run.stderr);
    for (const f of ['runpod-llm-watchdog.service', 'runpod-llm-gateway.service'])
      assert.ok(!existsSync(join(unitDir(), f)), f);
    assert.ok(!existsSync(join(root, 'home', 'service', 'watchdog.env')));
    assert.ok(!existsSync(join(root, 'home', 'service', 'gateway.env')));
    assert.match(run.stdout, /removed .*runpod-llm-watchdog\.service/);
    const status = JSON.parse(
      (await cli(['service', 'status', '--kind', 'systemd', '--json'], env)).stdout,
    ) as { services: Array<{ installed: boolean }> };
    assert.deepEqual(
      status.services.map((s) => s.installed),
      [false, false],
    );
    assert.equal(
      (await cli(['service', 'uninstall', '--kind', 'systemd'], env)).stdout.trim(),
      'no service files were installed',
    );
  });

  it('install that cannot reach the service manager stops nothing that runs (no pod left unwatched)', async (t) => {
    if (spawnSync('systemctl', ['--user', 'daemon-reload']).status === 0) {
      t.skip('a systemd user manager answers here: this test is for a session without one');
      return;
    }
    const home = join(root, 'home-running');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    // A process that passes for a watchdog `up` started (its argv has `watch`).
    const fake = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'watch'], { stdio: 'ignore' });
    if (fake.pid !== undefined) pids.add(fake.pid);
    writeFileSync(join(home, 'watchdog.pid'), `${fake.pid}\n`, { mode: 0o600 });
    const run = await cli(['service', 'install', '--kind', 'systemd'], { ...env, RUNPOD_LLM_HOME: home });
    assert.ok(run.code === 8 || run.code === 3, `${run.code} ${run.stderr}`);
    assert.match(
      run.stderr,
      /^fix: the service files are written; (nothing was stopped or started|start them by hand)/m,
    );
    assert.equal(readDaemon(home, 'watchdog')?.running, true, 'the running watchdog was left alone');
    fake.kill('SIGKILL');
    await cli(['service', 'uninstall', '--kind', 'systemd'], { ...env, RUNPOD_LLM_HOME: home });
  });
});
