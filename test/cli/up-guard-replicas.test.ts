import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import type { StatusData } from '../../src/doctor/status.js';
import { cli } from './cli-rig.js';

/**
 * `up --unguarded` and `up --replicas N` through the real CLI (in-process), against the emulator
 * on the system clock with a short schedule, without daemons.
 */
describe('runpod-llm up --unguarded / --replicas (CLI, in-process)', () => {
  let emulator: Emulator;
  const homes: string[] = [];
  const envFor = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const home = mkdtempSync(join(tmpdir(), 'cli-guard-'));
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
  const status = async (env: NodeJS.ProcessEnv): Promise<StatusData> =>
    JSON.parse((await cli(['status', '--json'], env)).stdout) as StatusData;

  before(async () => {
    emulator = await startEmulator({ schedule: { provisioningMs: 60, startingMs: 60, loadMs: 60 } });
  });
  after(async () => {
    await emulator.close();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  it('up is guarded by default; --unguarded warns once, starts plain vLLM, and status says UNGUARDED', async () => {
    const guardedEnv = envFor();
    const guarded = await cli(['up', ...NO_DAEMONS], guardedEnv);
    assert.equal(guarded.code, 0, guarded.stderr);
    assert.doesNotMatch(guarded.stderr, /unguarded/i);
    assert.match(guarded.stderr, /serves .* \(behind the guard\)/);
    const g = await status(guardedEnv);
    assert.equal(g.pods[0]?.guard, '3');
    assert.match((await cli(['status'], guardedEnv)).stdout, /guard v3/);
    assert.equal((await cli(['down'], guardedEnv)).code, 0);

    const env = envFor();
    const run = await cli(['up', '--unguarded', ...NO_DAEMONS], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr.match(/warning: unguarded pod/g)?.length, 1, run.stderr);
    assert.match(run.stderr, /\/invocations runs completions on your GPU/);
    const s = await status(env);
    const pod = emulator.pods.created().find((p) => p.id === s.pods[0]?.podId);
    assert.match(pod?.request.args ?? '', /^Qwen\/Qwen2\.5-Coder-7B-Instruct --host 0\.0\.0\.0 --port 8000 /);
    assert.equal(pod?.request.env.RUNPOD_LLM_GUARD, undefined);
    assert.equal(s.pods[0]?.guard, null);
    assert.match((await cli(['status'], env)).stdout, /UNGUARDED/);

    // Reattaching to the unguarded run says so again, once.
    const again = await cli(['up', ...NO_DAEMONS], env);
    assert.equal(again.stderr.match(/warning: unguarded pod/g)?.length, 1, again.stderr);
    assert.equal((await cli(['down'], env)).code, 0);
  });

  it('--replicas 2 plans for two, creates and routes two pods, and down ends both', async () => {
    const dry = await cli(['up', '--dry-run', '--replicas', '2', '--runtime', '2h'], envFor());
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, /replicas: 2 pods/);
    assert.match(dry.stderr, /worst case: \$1\.08 \(bound by the runtime\)/, 'two pods at $0.27/h for 2 h');
    assert.equal((await cli(['up', '--replicas', '0', '--dry-run'], envFor())).code, 2);

    const env = envFor();
    const run = await cli(['up', '--replicas', '2', ...NO_DAEMONS], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /replicas: 2 of 2 ready/);
    const s = await status(env);
    assert.equal(s.run?.replicas, 2);
    assert.equal(s.pods.length, 2);
    assert.ok(
      s.pods.every((p) => p.ready && p.guard === '3'),
      JSON.stringify(s.pods),
    );
    const down = await cli(['down'], env);
    assert.equal(down.code, 0, down.stderr);
    for (const p of s.pods) assert.equal(emulator.pods.get(p.podId), undefined, `${p.podId} terminated`);
  });
  it('up says at once when the guarded pod cannot stop itself (its pod-scoped key is refused), and status keeps saying it', async () => {
    emulator.faults.set({ podKeyCanStop: false });
    try {
      const env = envFor();
      const run = await cli(['up', ...NO_DAEMONS], env);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stderr,
        /warning: pod \w+: this pod cannot stop itself: RunPod refused its pod-scoped key/,
      );
      assert.match((await cli(['status'], env)).stdout, /cannot stop itself/);
      assert.equal((await cli(['down'], env)).code, 0);
    } finally {
      emulator.faults.reset();
    }
    // With the key accepted, no warning.
    const env = envFor();
    const ok = await cli(['up', ...NO_DAEMONS], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /cannot stop itself/);
    assert.equal((await cli(['down'], env)).code, 0);
  });
});
