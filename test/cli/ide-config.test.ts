import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { cli } from './cli-rig.js';

describe('runpod-llm ide-config names the model the upstream serves', () => {
  let pod: VllmStandin;
  let home: string;
  before(async () => {
    pod = await startVllmStandin({ model: 'served/coder-model', apiKey: 'pod_key_for_ide_config_0001' });
    home = mkdtempSync(join(tmpdir(), 'ide-config-'));
  });
  after(async () => {
    await pod.close();
    rmSync(home, { recursive: true, force: true });
  });

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    RUNPOD_LLM_HOME: home,
    RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
    GATEWAY_API_KEYS: 'gw_ide_config_key_000000001',
    ...extra,
  });

  it('asks a static upstream, not the configured default; the Continue snippet has an autocomplete entry', async () => {
    const run = await cli(
      ['ide-config', 'continue'],
      env({ UPSTREAM_URL: `${pod.url}/v1`, UPSTREAM_API_KEY: 'pod_key_for_ide_config_0001' }),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /Qwen/);
    assert.match(run.stdout, /provider: openai\n {4}model: served\/coder-model/);
    assert.match(
      run.stdout,
      /provider: vllm\n {4}model: served\/coder-model\n {4}apiBase: http:\/\/127\.0\.0\.1:8000\/v1\n {4}apiKey: .*\n {4}roles:\n {6}- autocomplete/,
    );
    assert.equal(run.stderr, '');
    assert.ok(
      pod.requests.some(
        (r) => r.path === '/v1/models' && r.headers.authorization === 'Bearer pod_key_for_ide_config_0001',
      ),
    );
  });

  it('says so on stderr when nothing can be asked, and names the configured model', async () => {
    const run = await cli(['ide-config', 'openai-env'], env());
    assert.equal(run.code, 0);
    assert.match(run.stdout, /OPENAI_MODEL=Qwen\/Qwen2\.5-Coder-7B-Instruct/);
    assert.match(run.stderr, /neither the gateway nor an upstream answered \/v1\/models/);
  });
});
