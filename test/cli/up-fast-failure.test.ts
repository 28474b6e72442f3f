import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import { cli } from './cli-rig.js';

/**
 * Fast failure through the real CLI, on the system clock: an emulator that passes the JSON start
 * command to `vllm serve` as plain arguments (args mode plain) makes `up` exit 5 quickly with the
 * cause, the pod's last log lines and the fix, and no pod left on the account.
 */
describe('runpod-llm up against a v2 that does not honour the JSON start command (CLI)', () => {
  let emulator: Emulator;
  let home: string;

  before(async () => {
    emulator = await startEmulator({
      schedule: { provisioningMs: 60, startingMs: 60, loadMs: 60, restartMs: 100, crashMs: 50 },
      behaviour: { argsMode: 'plain' },
    });
    home = mkdtempSync(join(tmpdir(), 'cli-fast-failure-'));
  });
  after(async () => {
    await emulator.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('exits 5 with the cause, the last log lines and what to do next; nothing left billing', async () => {
    const env = {
      RUNPOD_API_URL: emulator.apiUrl,
      RUNPOD_API_KEY: emulator.apiKey,
      RUNPOD_POD_URL_TEMPLATE: emulator.podUrlTemplate,
      RUNPOD_LLM_HOME: home,
      RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
      RUNPOD_LLM_READINESS_POLL: '100ms',
    };
    const run = await cli(['up', '--no-gateway', '--no-watchdog'], env);
    assert.equal(run.code, 5, run.stderr);
    assert.match(
      run.stderr,
      /error: pod \w+ will not become ready: vLLM refused its arguments \(vllm serve: error: unrecognized arguments: .*\); it was terminated\nlast log lines:\n/,
    );
    assert.match(run.stderr, / {2}vllm serve: error: unrecognized arguments: /);
    assert.match(run.stderr, /\nfix: .*runpod-llm doctor --live/);
    assert.deepEqual(emulator.pods.list(), [], 'no pod left');
    const status = await cli(['status', '--json'], env);
    const data = JSON.parse(status.stdout) as {
      run: null;
      lastRun: { endReason: string };
      recent: Array<{ action: string; reason: string }>;
    };
    assert.equal(data.run, null);
    assert.equal(data.lastRun.endReason, 'pod_failed');
    assert.ok(data.recent.some((e) => e.action === 'start_failed' && e.reason === 'vllm_arguments'));
  });
});
