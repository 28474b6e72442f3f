import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import type { ContainerStart } from '../../src/emulator/pod-record.js';
import { decodeGuardEnv, GUARD_ENV, GUARD_ENV_MAX_BYTES, readGuardSource } from '../../src/guard/recipe.js';
import {
  judgeJsonForm,
  judgeSelfStop,
  markers,
  probeRequest,
  runLiveProbe,
} from '../../src/doctor/live-probe.js';
import { probeApiFor } from '../../src/doctor/live-probe-api.js';
import { RunPodError } from '../../src/runpod/errors.js';
import { systemClock } from '../../src/shared/clock.js';
import { realSleep } from '../../src/shared/sleep.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { ManualClock } from '../../src/shared/clock.js';
import { openState } from '../../src/state/db.js';
import { listVerdicts } from '../../src/state/verdicts.js';
import { Writable } from 'node:stream';
import { runDoctorCommand } from '../../src/cli/commands/doctor.js';
import type { CliIo } from '../../src/cli/io.js';
import { createRunPodClient } from '../../src/runpod/client.js';
import { installId } from '../../src/state/install.js';
import { cli, until } from './cli-rig.js';

/**
 * A container runtime for the emulator's probe pods: each start runs the pod's real start
 * script with `sh -c` and the container's env (the pod-scoped RUNPOD_API_KEY, RUNPOD_POD_ID,
 * the shipped guard), so the self-stop goes through the guard's own code against the emulator.
 */
class Containers {
  readonly children = new Set<ChildProcess>();
  /** What the containers' processes printed (stdout and stderr), as it comes. */
  output = '';
  start = (s: ContainerStart): void => {
    if (s.shell === undefined) return;
    const child = spawn('sh', ['-c', s.shell], {
      env: { PATH: process.env.PATH, ...s.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout?.on('data', (b: Buffer) => (this.output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (this.output += b.toString()));
    this.children.add(child);
  };
  stop(): void {
    for (const c of this.children) {
      try {
        if (c.pid !== undefined && c.exitCode === null) process.kill(-c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    this.children.clear();
  }
}

const SCHEDULE = { provisioningMs: 200, startingMs: 200, loadMs: 200, restartMs: 400, crashMs: 300 };

describe('runpod-llm doctor', () => {
  let emulator: Emulator;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const containers = new Containers();

  before(async () => {
    emulator = await startEmulator({ schedule: SCHEDULE, onContainerStart: containers.start });
  });
  after(async () => {
    containers.stop();
    await emulator.close();
  });
  const fresh = (): void => {
    home = mkdtempSync(join(tmpdir(), 'cli-doctor-'));
    env = {
      RUNPOD_API_URL: emulator.apiUrl,
      RUNPOD_API_KEY: emulator.apiKey,
      RUNPOD_LLM_HOME: home,
      RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
    };
  };
  afterEach(() => {
    containers.stop();
    emulator.faults.reset();
    rmSync(home, { recursive: true, force: true });
  });

  const verdicts = (): Array<[string, string]> => {
    const state = openState({ home });
    try {
      return listVerdicts(state).map((v) => [v.name, v.value]);
    } finally {
      state.close();
    }
  };

  it('read-only: every check passes against a healthy account, changes nothing, and never prints the key', async () => {
    fresh();
    const run = await cli(['doctor', '--json'], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      checks: Array<{ id: string; status: string; summary: string }>;
    };
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.checks.map((c) => [c.id, c.status]),
      [
        ['runpod_api', 'ok'],
        ['runpod_key', 'ok'],
        ['catalog', 'ok'],
        ['rate_limit', 'ok'],
        ['clock', 'ok'],
        ['state_permissions', 'ok'],
        ['gateway', 'ok'],
        ['watchdog', 'ok'],
        ['live_behaviour', 'warn'],
      ],
    );
    assert.match(
      report.checks.find((c) => c.id === 'rate_limit')?.summary ?? '',
      /RateLimit headers seen \(minute: \d+ left/,
    );
    assert.ok(!run.stdout.includes(emulator.apiKey));
    assert.equal(emulator.pods.created().length, 0);
  });

  it('a refused key, loose state permissions and a skewed clock each fail with their fix (exit 10)', async () => {
    fresh();
    const bad = await cli(['doctor'], { ...env, RUNPOD_API_KEY: 'rpa_wrong_key_0000000000000000' });
    assert.equal(bad.code, 10);
    assert.match(bad.stdout, /^FAIL runpod_key +RunPod refused the key \(401\)/m);
    assert.match(bad.stdout, /fix: create a key in the RunPod console/);
    assert.ok(!bad.stdout.includes('rpa_wrong_key'));

    writeFileSync(join(home, 'gateway.key'), 'rlm_x\n', { mode: 0o600 });
    chmodSync(join(home, 'gateway.key'), 0o644);
    const loose = await cli(['doctor'], env);
    assert.equal(loose.code, 10);
    assert.match(
      loose.stdout,
      new RegExp(
        `^FAIL state_permissions +readable by other users: ${join(home, 'gateway.key')} \\(0644, want 0600\\)`,
        'm',
      ),
    );

    // This machine's clock two minutes ahead of RunPod's Date header.
    const skewed = await runDoctor(
      { fetch: globalThis.fetch, clock: new ManualClock(Date.now() + 120_000) },
      { home, apiUrl: emulator.apiUrl, apiKey: emulator.apiKey, gpuTypes: [] },
    );
    const clock = skewed.checks.find((c) => c.id === 'clock');
    assert.equal(clock?.status, 'fail');
    assert.match(clock?.summary ?? '', /^this clock is 1[12]\d s ahead of RunPod/);
    assert.equal(skewed.ok, false);
  });

  it('tells a Cloudflare block (403, not JSON) from a refused key', async () => {
    fresh();
    const server: Server = createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'text/html' });
      res.end('error code: 1010');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const report = await runDoctor(
        { fetch: globalThis.fetch, clock: new ManualClock(Date.now()) },
        {
          home,
          apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          apiKey: 'k',
          gpuTypes: [],
        },
      );
      assert.equal(report.checks[0]?.id, 'runpod_api');
      assert.equal(report.checks[0]?.status, 'fail');
      assert.match(report.checks[0]?.summary ?? '', /Cloudflare/);
    } finally {
      server.close();
    }
  });

  it('--live without --yes and without a terminal refuses with the fix, creating nothing', async () => {
    fresh();
    const run = await cli(['doctor', '--live'], env);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^error: doctor --live creates a billed pod, and there is no terminal to ask for consent$/m,
    );
    assert.match(run.stderr, /^fix: run `runpod-llm doctor --live --yes` to agree/m);
    assert.equal(emulator.pods.created().length, 0);
  });

  it('--live asks first on a terminal: "n" creates nothing; the question names the pod and its price', async () => {
    fresh();
    const before = emulator.pods.created().length;
    let asked = '';
    let stderr = '';
    const io: CliIo = {
      stdout: new Writable({ write: (_c, _e, done) => done() }),
      stderr: new Writable({ write: (c, _e, done) => ((stderr += String(c)), done()) }),
      env: { PATH: process.env.PATH, ...env },
      signal: new AbortController().signal,
      isTTY: true,
    };
    const code = await runDoctorCommand({ live: true }, io, async (q) => ((asked = q), 'n'));
    assert.equal(code, 0);
    assert.match(
      asked,
      /creates one CPU pod on your RunPod account \(cpu3c, 2 vCPU at \$0\.060\/h\) for under two minutes \(at most about \$0\.0020\) and terminates it\. Go on\? \[y\/N\] $/,
    );
    assert.match(stderr, /nothing created/);
    assert.equal(emulator.pods.created().length, before);
  });

  it("--live first terminates a probe pod an earlier, killed doctor left behind (this install's only)", async () => {
    fresh();
    const client = createRunPodClient({ apiKey: emulator.apiKey, baseUrl: emulator.apiUrl });
    const mine = await client.createPod({
      name: 'runpod-llm-doctor-left0ver',
      image: 'certbot/certbot:v2.11.0',
      cpu: { id: 'cpu3c', vcpuCount: 2 },
      env: { RUNPOD_LLM_INSTALL: installId(home) },
    });
    const theirs = await client.createPod({
      name: 'runpod-llm-doctor-elsewhere',
      image: 'certbot/certbot:v2.11.0',
      cpu: { id: 'cpu3c', vcpuCount: 2 },
      env: { RUNPOD_LLM_INSTALL: 'i-000000000000' },
    });
    const run = await cli(['doctor', '--live', '--yes', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((JSON.parse(run.stdout) as { live: { leftovers: string[] } }).live.leftovers, [mine.id]);
    assert.deepEqual(
      emulator.pods.list().map((p) => p.id),
      [theirs.id],
      "another install's probe is not ours to end",
    );
    await client.deletePod(theirs.id);
  });

  it('--live --yes: one CPU pod, the JSON form honoured, the pod stops itself through the guard, terminated, verdicts stored', async () => {
    fresh();
    const before = emulator.pods.created().length;
    const run = await cli(['doctor', '--live', '--yes', '--json'], env);
    assert.equal(run.code, 0, run.stderr + containers.output);
    const out = JSON.parse(run.stdout) as {
      live: {
        podId: string;
        cpu: { id: string; vcpuCount: number; pricePerHr: number };
        jsonStartCommand: { value: string };
        selfStop: { value: string; detail: string };
        argsUnchanged: boolean;
        costUsd: number;
        seconds: number;
      };
    };
    assert.equal(out.live.jsonStartCommand.value, 'honoured');
    assert.equal(out.live.selfStop.value, 'honoured', out.live.selfStop.detail);
    assert.equal(out.live.argsUnchanged, true);
    assert.deepEqual(out.live.cpu, { id: 'cpu3c', vcpuCount: 2, pricePerHr: 0.06 }, 'the cheapest CPU type');
    assert.ok(out.live.seconds > 0 && out.live.seconds < 120);
    assert.equal(Math.round(out.live.costUsd * 1e9), Math.round(((0.06 * out.live.seconds) / 3600) * 1e9));
    const created = emulator.pods.created().slice(before);
    assert.equal(created.length, 1, 'exactly one pod');
    assert.equal(created[0]?.cpu?.flavor.id, 'cpu3c');
    assert.equal(created[0]?.gpu, undefined);
    assert.equal(emulator.pods.list().length, 0, 'nothing left');
    assert.deepEqual(verdicts(), [
      ['json_start_command', 'honoured'],
      ['self_stop', 'honoured'],
    ]);
    // The stop went through the guard's code with the pod-scoped key (not the account key).
    assert.match(containers.output, /guard self-stop: .*HTTP 200|stopping pod .*stopped/);
    assert.ok(!run.stdout.includes(emulator.apiKey) && !run.stderr.includes(emulator.apiKey));

    const shown = await cli(['doctor'], env);
    assert.match(
      shown.stdout,
      /^ok   live_behaviour +JSON start command: honoured \(\d{4}-\d\d-\d\d\); pod self-stop: honoured/m,
    );
  });

  it('--live on an API without the logs endpoint: the verdicts follow from the pod stopping itself', async () => {
    fresh();
    const before = emulator.pods.created().length;
    const client = createRunPodClient({ apiKey: emulator.apiKey, baseUrl: emulator.apiUrl });
    const real = probeApiFor(client, {
      fetch: globalThis.fetch,
      apiUrl: emulator.apiUrl,
      apiKey: emulator.apiKey,
    });
    // As if GET /v2/pods/{id}/logs did not exist on the live API.
    const api = {
      ...real,
      podLogs: async () =>
        Promise.reject(new RunPodError('RUNPOD_NOT_FOUND', 'RunPod answered 404 (GET /v2/pods/{id}/logs)')),
    };
    const state = openState({ home });
    try {
      const r = await runLiveProbe(
        { api, state, clock: systemClock, sleep: realSleep },
        { guardSource: readGuardSource(), runpodApiUrl: emulator.apiUrl, pollMs: 300 },
      );
      assert.equal(r.jsonStartCommand.value, 'honoured');
      assert.match(
        r.jsonStartCommand.detail,
        /the pod stopped itself, which only the JSON start command's script does \(its logs could not be read: RunPod answered 404/,
      );
      assert.equal(r.selfStop.value, 'honoured');
    } finally {
      state.close();
    }
    assert.equal(emulator.pods.created().length - before, 1);
    assert.equal(emulator.pods.list().length, 0);
  });

  it('--live with the JSON form not honoured: not_honoured (the text reached the entrypoint), self-stop untested, exit 10, nothing left', async () => {
    fresh();
    emulator.faults.set({ argsMode: 'plain' });
    const before = emulator.pods.created().length;
    const run = await cli(['doctor', '--live', '--yes'], env);
    assert.equal(run.code, 10, run.stderr);
    assert.match(
      run.stdout,
      /JSON start command: not honoured \(the JSON text reached the image's own entrypoint/,
    );
    assert.match(
      run.stdout,
      /pod self-stop: +unknown \(not tested: the probe script runs only when the JSON start command is honoured\)/,
    );
    assert.match(run.stdout, /cost about \$0\.0\d{3}/);
    assert.equal(emulator.pods.created().length - before, 1);
    assert.equal(emulator.pods.list().length, 0);
    assert.deepEqual(verdicts(), [
      ['json_start_command', 'not_honoured'],
      ['self_stop', 'unknown'],
    ]);
  });

  it('Ctrl-C during --live terminates the probe pod and stores nothing (exit 130)', async () => {
    fresh();
    emulator.faults.set({ podKeyCanStop: false }); // so the probe would otherwise wait
    const before = emulator.pods.created().length;
    const controller = new AbortController();
    const running = cli(['doctor', '--live', '--yes'], env, controller.signal);
    await until('the probe pod', () => (emulator.pods.created().length > before ? true : undefined));
    controller.abort();
    const run = await running;
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /interrupted: terminating \S+ \(Ctrl-C again would leave it billing\)/);
    assert.equal(emulator.pods.created().length - before, 1);
    assert.equal(emulator.pods.list().length, 0, 'terminated');
    assert.deepEqual(verdicts(), []);
  });

  it('an API failure mid-probe still terminates the pod, and the error says what failed', async () => {
    fresh();
    const before = emulator.pods.created().length;
    const client = createRunPodClient({ apiKey: emulator.apiKey, baseUrl: emulator.apiUrl, retries: 0 });
    const real = probeApiFor(client, {
      fetch: globalThis.fetch,
      apiUrl: emulator.apiUrl,
      apiKey: emulator.apiKey,
    });
    // The second status read fails for good (as a 503 past the client's retries would).
    let reads = 0;
    const api = {
      ...real,
      getPod: async (id: string) => {
        reads++;
        if (reads >= 2)
          throw new RunPodError('RUNPOD_UNAVAILABLE', 'RunPod answered 503 (GET /v2/pods/{id})');
        return real.getPod(id);
      },
    };
    const steps: string[] = [];
    const state = openState({ home });
    try {
      await assert.rejects(
        runLiveProbe(
          { api, state, clock: systemClock, sleep: realSleep, onStep: (t) => steps.push(t) },
          { guardSource: readGuardSource(), runpodApiUrl: emulator.apiUrl, pollMs: 200 },
        ),
        /RunPod answered 503/,
      );
    } finally {
      state.close();
    }
    assert.match(steps.at(-1) ?? '', /^terminating \S+$/);
    assert.equal(emulator.pods.created().length - before, 1);
    assert.equal(emulator.pods.list().length, 0, 'terminated');
    assert.deepEqual(verdicts(), []);
  });
});

describe('doctor --live verdicts from what the pod shows', () => {
  const n = 'abc123';
  const m = markers(n);
  const line = (source: string, text: string) => ({ ts: '2026-12-02T12:00:00Z', source, line: text });
  it("ships the guard in the probe pod's env as `up` does: zlib-compressed, under the env bound", () => {
    const source = readGuardSource();
    const request = probeRequest({
      name: 'probe',
      image: 'python:3.12-slim',
      cpu: { id: 'cpu3c', vcpuCount: 2, pricePerHr: 0.06 },
      nonce: n,
      guardSource: source,
      runpodApiUrl: 'https://rest.runpod.io',
      install: 'i',
    });
    const value = request.env?.[GUARD_ENV] ?? '';
    assert.equal(decodeGuardEnv(value), source);
    assert.ok(value.length <= GUARD_ENV_MAX_BYTES, `${value.length} bytes`);
  });
  it('the marker, the raw JSON, a restart loop, or nothing yet', () => {
    assert.equal(
      judgeJsonForm([line('system', 'start container'), line('container', m.honoured)], n)?.value,
      'honoured',
    );
    assert.equal(
      judgeJsonForm(
        [
          line(
            'container',
            `usage: certbot [SUBCOMMAND] ... {"entrypoint":["sh","-c"],"cmd":["echo ${m.honoured}"]}`,
          ),
        ],
        n,
      )?.value,
      'not_honoured',
    );
    assert.equal(
      judgeJsonForm(
        [
          line('system', 'start container'),
          line('system', 'container exited with code 2'),
          line('system', 'start container'),
        ],
        n,
      )?.value,
      'not_honoured',
    );
    assert.equal(judgeJsonForm([line('system', 'start container')], n), null);
  });
  it('self-stop: EXITED by itself, the guard reporting a refusal, or nothing yet', () => {
    assert.equal(judgeSelfStop([], n, true)?.value, 'honoured');
    const refused = judgeSelfStop(
      [
        line('container', 'guard self-stop: doctor --live probe; stopping pod p1: HTTP 403 (key refused)'),
        line('container', `${m.stopExit}1`),
      ],
      n,
      false,
    );
    assert.equal(refused?.value, 'not_honoured');
    assert.match(refused?.detail ?? '', /exit 1\): guard self-stop: .*HTTP 403 \(key refused\)/);
    assert.equal(
      judgeSelfStop([line('container', `${m.stopExit}$?`)], n, false),
      null,
      'an unexpanded status is no evidence',
    );
    assert.equal(
      judgeSelfStop([line('container', `${m.stopExit}0`)], n, false),
      null,
      'a stop that said ok but the pod still runs: wait for EXITED',
    );
  });
});
