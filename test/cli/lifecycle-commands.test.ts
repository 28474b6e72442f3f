import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import { createRunPodClient } from '../../src/runpod/client.js';
import { cli } from './cli-rig.js';

/**
 * The manager commands through the real CLI (in-process `runCli`) against the emulator on the
 * system clock with a short schedule. No daemons here (`--no-gateway --no-watchdog`): the
 * detached processes have their own test.
 */
describe('runpod-llm up/status/watch/down/catalog/ide-config (CLI, in-process)', () => {
  let emulator: Emulator;
  const homes: string[] = [];
  const envFor = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const home = mkdtempSync(join(tmpdir(), 'cli-lifecycle-'));
    homes.push(home);
    return {
      RUNPOD_API_URL: emulator.apiUrl,
      RUNPOD_API_KEY: emulator.apiKey,
      RUNPOD_POD_URL_TEMPLATE: emulator.podUrlTemplate,
      RUNPOD_LLM_HOME: home,
      RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
      RUNPOD_LLM_READINESS_POLL: '50ms',
      ...extra,
    };
  };
  const NO_DAEMONS = ['--no-gateway', '--no-watchdog'];

  before(async () => {
    emulator = await startEmulator({ schedule: { provisioningMs: 60, startingMs: 60, loadMs: 60 } });
  });
  after(async () => {
    await emulator.close();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  it('without RUNPOD_API_KEY says so in one line plus the fix, exit 4', async () => {
    const env = envFor();
    delete env.RUNPOD_API_KEY;
    const run = await cli(['up', ...NO_DAEMONS], env);
    assert.equal(run.code, 4);
    assert.match(run.stderr, /^error: RUNPOD_API_KEY is not set\nfix: export RUNPOD_API_KEY=/);
  });

  it('refuses a duration without a unit, naming the setting and where it came from (exit 2)', async () => {
    const run = await cli(['up', '--dry-run'], envFor({ RUNPOD_LLM_RUNTIME_LIMIT: '90' }));
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^ {2}- RUNPOD_LLM_RUNTIME_LIMIT=90: not a duration: .*\(manager\.runtime_limit\)$/m,
    );
  });

  it('names the flag the user typed in a configuration error (exit 2)', async () => {
    const run = await cli(['up', '--dry-run', '--runtime', '5x'], envFor());
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^ {2}- --runtime 5x: not a duration: use e\.g\. "15m" or "1h", or "off" for no limit \(manager\.runtime_limit\)$/m,
    );
    assert.match(run.stderr, /^fix: /m);
  });

  it('--dry-run prints the plan (GPU, $/h, worst case) and creates nothing', async () => {
    const before = emulator.pods.created().length;
    const human = await cli(['up', '--dry-run', '--runtime', '2h', '--budget', '5'], envFor());
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /plan: .* on 1× NVIDIA RTX A5000 \(24 GB, SECURE\) at \$0\.27\/h/);
    assert.match(human.stderr, /worst case: \$0\.54 \(bound by the runtime\)/);
    const json = await cli(
      ['up', '--dry-run', '--json', '--gpu', 'NVIDIA L40S', '--gpu', 'NVIDIA RTX A6000'],
      envFor(),
    );
    const plan = JSON.parse(json.stdout) as { gpu: { id: string }; fallbacks: Array<{ id: string }> };
    assert.equal(plan.gpu.id, 'NVIDIA L40S');
    assert.deepEqual(
      plan.fallbacks.map((f) => f.id),
      ['NVIDIA RTX A6000'],
    );
    assert.equal(emulator.pods.created().length, before);
  });

  it('two concurrent `up` make one pod: the second says a manager is running (exit 7); a later `up` reattaches', async () => {
    const env = envFor();
    const before = emulator.pods.created().length;
    const [a, b] = await Promise.all([cli(['up', ...NO_DAEMONS], env), cli(['up', ...NO_DAEMONS], env)]);
    const codes = [a.code, b.code].sort();
    assert.deepEqual(codes, [0, 7], `${a.stderr}\n${b.stderr}`);
    const loser = a.code === 7 ? a : b;
    assert.match(
      loser.stderr,
      /^error: another runpod-llm manager is running \(pid \d+, `up` since .*\)\nfix: /,
    );
    assert.equal(emulator.pods.created().length, before + 1);

    const again = await cli(['up', ...NO_DAEMONS], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already up: pod \w+ serves/);
    assert.equal(emulator.pods.created().length, before + 1);

    const other = await cli(['up', ...NO_DAEMONS, '--model', 'meta-llama/Llama-3.1-8B-Instruct'], env);
    assert.equal(other.code, 7);
    assert.match(other.stderr, /a run serving Qwen\/Qwen2\.5-Coder-7B-Instruct is active/);

    const status = await cli(['status', '--json'], env);
    const data = JSON.parse(status.stdout) as {
      run: { runtimeLeftMs: number };
      pods: Array<{ status: string; ready: boolean }>;
      gateway: { running: boolean };
      runpod: string;
    };
    assert.equal(data.pods[0]?.status, 'RUNNING');
    assert.equal(data.pods[0]?.ready, true);
    assert.equal(data.runpod, 'live');
    assert.equal(data.gateway.running, false);
    assert.ok(data.run.runtimeLeftMs > 0);
    assert.ok(!status.stdout.includes(emulator.apiKey), 'no key in --json');

    const human = await cli(['status'], env);
    assert.match(
      human.stdout,
      /^pod {7}\w+ \(runpod-llm-\w+\) RUNNING, ready on 1× NVIDIA RTX A5000 SECURE, \$0\.27\/h/m,
    );

    const down = await cli(['down', '--json'], env);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(
      (JSON.parse(down.stdout) as { pods: Array<{ outcome: string }> }).pods[0]?.outcome,
      'terminated',
    );
    const quiet = await cli(['down'], env);
    assert.equal(quiet.code, 0);
    assert.match(quiet.stdout, /nothing was running/);
  });

  it('readiness timeout through the CLI: pod terminated, exit 6, cause and fix', async () => {
    emulator.faults.set({ standinNeverLoads: true });
    try {
      const env = envFor({ RUNPOD_LLM_READINESS_TIMEOUT: '1s' });
      const run = await cli(['up', ...NO_DAEMONS], env);
      assert.equal(run.code, 6, run.stderr);
      assert.match(
        run.stderr,
        /error: pod \w+ was not ready after 1s \(still waiting for \/health through the pod URL \(HTTP 502.*\); it was terminated\nfix: .*readiness_timeout/,
      );
      // Plain progress lines off a TTY; which statuses a poll catches depends on the machine's load.
      assert.match(
        run.stderr,
        /\[\d+ms\] (PROVISIONING|STARTING|RUNNING) — waiting for /,
        'plain progress lines off a TTY',
      );
      const status = await cli(['status', '--json'], env);
      const data = JSON.parse(status.stdout) as { run: null; lastRun: { endReason: string } };
      assert.equal(data.run, null);
      assert.equal(data.lastRun.endReason, 'readiness_timeout');
    } finally {
      emulator.faults.reset();
    }
  });

  it('Ctrl-C while waiting for readiness terminates the pod it created (exit 130)', async () => {
    emulator.faults.set({ standinNeverLoads: true });
    try {
      const env = envFor();
      const controller = new AbortController();
      const before = emulator.pods.created().length;
      const pending = cli(['up', ...NO_DAEMONS], env, controller.signal);
      while (emulator.pods.created().length === before)
        await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 300));
      controller.abort();
      const run = await pending;
      assert.equal(run.code, 130, run.stderr);
      assert.match(run.stderr, /error: interrupted/);
      const pod = emulator.pods.created().at(-1);
      assert.equal(emulator.pods.get(pod?.id ?? ''), undefined, 'terminated');
    } finally {
      emulator.faults.reset();
    }
  });

  it('down --stop parks the pod; up resumes the same pod', async () => {
    const env = envFor();
    assert.equal((await cli(['up', ...NO_DAEMONS], env)).code, 0);
    const stopped = await cli(['down', '--stop', '--json'], env);
    const podId =
      (JSON.parse(stopped.stdout) as { pods: Array<{ podId: string; outcome: string }> }).pods[0]?.podId ??
      '';
    assert.equal(emulator.pods.get(podId)?.status, 'EXITED');
    const resumed = await cli(['up', ...NO_DAEMONS], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stderr,
      new RegExp(`starting the stopped pod ${podId} again[\\s\\S]*pod ${podId} resumed`),
    );
    assert.equal(emulator.pods.get(podId)?.status, 'RUNNING');
    assert.equal((await cli(['down'], env)).code, 0);
    assert.equal(emulator.pods.get(podId), undefined);
  });

  it('watch (cron): nothing to do, reports an orphan, reaps it with --reap', async () => {
    const env = envFor();
    const idle = await cli(['watch'], env);
    assert.equal(idle.code, 0, idle.stderr);
    assert.match(idle.stdout, /ok: no active run/);
    const api = createRunPodClient({ baseUrl: emulator.apiUrl, apiKey: emulator.apiKey });
    const orphan = await api.createPod({
      name: 'runpod-llm-lostpod1',
      image: 'vllm/vllm-openai:v0.11.0',
      gpu: { id: 'NVIDIA RTX A5000', count: 1 },
    });
    const seen = await cli(['watch', '--json'], env);
    assert.deepEqual((JSON.parse(seen.stdout) as { orphans: unknown[] }).orphans, [
      { podId: orphan.id, name: 'runpod-llm-lostpod1' },
    ]);
    const human = await cli(['watch'], env);
    assert.match(human.stdout, new RegExp(`orphan ${orphan.id} \\(runpod-llm-lostpod1\\).*watch --reap`));
    assert.ok(emulator.pods.get(orphan.id));
    const reaped = await cli(['watch', '--reap'], env);
    assert.equal(reaped.code, 0);
    assert.match(reaped.stdout, new RegExp(`terminate ${orphan.id} \\(orphan\\)`));
    assert.equal(emulator.pods.get(orphan.id), undefined);
  });

  it('catalog lists types cheapest first and flags unknown configured ids (exit 2)', async () => {
    const json = await cli(['catalog', '--json', '--min-vram', '48'], envFor());
    assert.equal(json.code, 0, json.stderr);
    const data = JSON.parse(json.stdout) as { gpus: Array<{ id: string; memoryGb: number; stock: string }> };
    assert.deepEqual(data.gpus.map((g) => g.id).slice(0, 2), ['NVIDIA RTX A6000', 'NVIDIA L40S']);
    assert.ok(data.gpus.every((g) => g.memoryGb >= 48 && typeof g.stock === 'string'));
    const bad = await cli(['catalog'], envFor({ RUNPOD_LLM_GPU_TYPES: 'NVIDIA RTX A5000,NVIDIA RTX 9090' }));
    assert.equal(bad.code, 2);
    assert.match(bad.stdout, /NVIDIA RTX A5000 .*\(configured\)/);
    assert.match(bad.stderr, /error: configured GPU type\(s\) unknown to RunPod: "NVIDIA RTX 9090"\nfix: /);
  });

  it('ide-config prints each client snippet; an unknown client is a usage error', async () => {
    const env = envFor();
    for (const client of ['continue', 'codegpt', 'kilo', 'openai-env']) {
      const run = await cli(['ide-config', client], env);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /http:\/\/127\.0\.0\.1:8000\/v1/);
      assert.match(run.stdout, /Qwen\/Qwen2\.5-Coder-7B-Instruct/);
    }
    assert.match((await cli(['ide-config', 'continue'], env)).stdout, /provider: openai\n {4}model: Qwen/);
    assert.equal((await cli(['ide-config', 'vim'], env)).code, 2);
  });
});
