import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseVllmLaunch } from '../../src/emulator/pod-args.js';
import {
  decodeGuardEnv,
  encodeGuardEnv,
  GUARD_ENV_MAX_BYTES,
  guardedPodStart,
  guardVersion,
  readGuardSource,
  shellQuote,
  unguardedPodStart,
  type PodRecipeInput,
} from '../../src/guard/recipe.js';
import { POD_KEY, podRequest, type Rig, SCHEDULE, startRig } from '../emulator/setup.js';
import { GUARD_PY } from './run-guard.js';

const INPUT: PodRecipeInput = {
  model: 'Qwen/Qwen3-8B',
  servedName: 'qwen3',
  maxModelLen: 8192,
  gpuMemoryUtilization: 0.9,
  podKey: POD_KEY,
};

/** The one shell command of a JSON start command. */
function startCommand(args: string): string {
  const parsed = JSON.parse(args) as { entrypoint: unknown; cmd: unknown };
  assert.deepEqual(parsed.entrypoint, ['bash', '-c']);
  assert.ok(Array.isArray(parsed.cmd) && parsed.cmd.length === 1 && typeof parsed.cmd[0] === 'string');
  return parsed.cmd[0];
}

describe('shellQuote', () => {
  it('leaves safe words bare and single-quotes the rest', () => {
    assert.equal(shellQuote('Qwen/Qwen2.5-Coder-7B-Instruct'), 'Qwen/Qwen2.5-Coder-7B-Instruct');
    assert.equal(shellQuote('--max-num-seqs=8'), '--max-num-seqs=8');
    assert.equal(shellQuote(''), "''");
    assert.equal(shellQuote('a b'), "'a b'");
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
    assert.throws(() => shellQuote('a\0b'), TypeError);
  });

  it('round-trips hostile values through bash byte for byte', () => {
    const values = [
      "it's",
      '$(touch /tmp/x)',
      '`id`',
      '${HOME}',
      '"; rm -rf / #',
      'a\nb',
      '~',
      '*',
      'é ü',
      "''",
      '\\',
      '!',
      '-',
      'x|y&z;w',
      '',
    ];
    const run = spawnSync('bash', ['-c', `printf '%s\\0' ${values.map(shellQuote).join(' ')}`], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stdout.split('\0').slice(0, -1), values);
  });
});

describe('guardedPodStart', () => {
  it('is a JSON start command that ships the guard in the env and the key only in the env', () => {
    const start = guardedPodStart({ ...INPUT, hfToken: 'hf_secret_token_123' });
    const cmd = startCommand(start.args);
    assert.equal(decodeGuardEnv(start.env.RUNPOD_LLM_GUARD ?? ''), readFileSync(GUARD_PY, 'utf8'));
    assert.equal(start.env.VLLM_API_KEY, POD_KEY);
    assert.equal(start.env.HF_TOKEN, 'hf_secret_token_123');
    assert.ok(!start.args.includes(POD_KEY) && !start.args.includes('hf_secret'), 'secrets stay out of args');
    assert.doesNotMatch(cmd, /--api-key/);
    assert.match(
      cmd,
      /^vllm serve Qwen\/Qwen3-8B --host 127\.0\.0\.1 --port 8001 --served-model-name qwen3 --max-model-len 8192 --gpu-memory-utilization 0\.90 &$/m,
    );
    assert.match(
      cmd,
      /GUARD_API_KEY="\$VLLM_API_KEY" GUARD_LISTEN_HOST=0\.0\.0\.0 GUARD_LISTEN_PORT=8000 GUARD_UPSTREAM=http:\/\/127\.0\.0\.1:8001 GUARD_MAX_CONNECTIONS=512 python3 "\$guard" &/,
    );
    assert.equal(guardedPodStart(INPUT).env.HF_TOKEN, undefined);
    assert.match(
      cmd,
      /^GUARD_LEASE_FILE="\$\{TMPDIR:-\/tmp\}\/runpod-llm-guard\.lease" GUARD_API_KEY=/m,
      'the lease survives a container restart',
    );
    assert.match(
      cmd,
      /^if python3 "\$guard" --stop-self "\$who exited with status \$status"; then$/m,
      'a dead vLLM stops the pod instead of restarting',
    );
    assert.equal(guardVersion(readGuardSource()), '3');
  });

  it('ships the guard compressed under its stated bound, and python3 decodes it byte for byte', () => {
    const value = guardedPodStart(INPUT).env.RUNPOD_LLM_GUARD ?? '';
    assert.ok(
      value.length <= GUARD_ENV_MAX_BYTES,
      `RUNPOD_LLM_GUARD is ${value.length} bytes, over ${GUARD_ENV_MAX_BYTES}`,
    );
    assert.match(value, /^[A-Za-z0-9+/]+=*$/);
    assert.equal(encodeGuardEnv(decodeGuardEnv(value)), value);
    // The start command's own decoding, run here: the file python3 writes is guard.py exactly.
    const cmd = startCommand(guardedPodStart(INPUT).args);
    const decode = cmd.split('\n').find((line) => line.startsWith('python3 -c '));
    assert.ok(decode, cmd);
    const run = spawnSync('bash', ['-c', decode.replace(/ > "\$guard" \|\| exit 70$/, '')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RUNPOD_LLM_GUARD: value },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, readFileSync(GUARD_PY, 'utf8'));
  });

  it('exits 70 before starting anything when the guard is missing or undecodable', () => {
    const cmd = startCommand(guardedPodStart(INPUT).args);
    const dir = mkdtempSync(join(tmpdir(), 'guard-recipe-'));
    try {
      for (const env of [{}, { RUNPOD_LLM_GUARD: '%%% not base64 %%%' }]) {
        const run = spawnSync('bash', ['-c', cmd], {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: dir, ...env },
          encoding: 'utf8',
          timeout: 10_000,
        });
        assert.equal(run.status, 70, `${JSON.stringify(env)}: ${run.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('quotes every interpolated value, extra arguments one by one', () => {
    const cmd = startCommand(
      guardedPodStart({
        ...INPUT,
        model: "org/m'$(id)",
        servedName: 'my model',
        extraArgs: ['--max-num-seqs', '8', '--chat-template', '{{ x }}'],
      }).args,
    );
    assert.match(
      cmd,
      /^vllm serve 'org\/m'\\''\$\(id\)' .* --served-model-name 'my model' .* --max-num-seqs 8 --chat-template '\{\{ x \}\}' &$/m,
    );
  });

  it('refuses values vLLM would read as options, and impossible numbers', () => {
    assert.throws(() => guardedPodStart({ ...INPUT, model: '--help' }), /model/);
    assert.throws(() => guardedPodStart({ ...INPUT, servedName: '' }), /servedName/);
    assert.throws(() => guardedPodStart({ ...INPUT, maxModelLen: 0 }), /maxModelLen/);
    assert.throws(() => guardedPodStart({ ...INPUT, gpuMemoryUtilization: 1.5 }), /gpuMemoryUtilization/);
    assert.throws(() => guardedPodStart({ ...INPUT, podKey: 'short' }), /podKey/);
    assert.throws(() => guardedPodStart(INPUT, 'print("no version")'), /GUARD_VERSION/);
  });
});

describe('unguardedPodStart', () => {
  it('is plain vllm serve arguments on the exposed port, the key in the env', () => {
    const start = unguardedPodStart(INPUT);
    assert.equal(
      start.args,
      'Qwen/Qwen3-8B --host 0.0.0.0 --port 8000 --served-model-name qwen3 --max-model-len 8192 --gpu-memory-utilization 0.90',
    );
    assert.deepEqual(start.env, { VLLM_API_KEY: POD_KEY });
    assert.throws(() => unguardedPodStart({ ...INPUT, servedName: 'my model' }), /cannot be quoted/);
  });
});

describe('the emulator runs a guarded pod', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig();
  });
  after(() => rig.emulator.close());

  it('reads the served name and the key from the recipe and serves on the exposed port', async () => {
    const start = guardedPodStart({ ...INPUT, servedName: "qwen 3's", maxModelLen: 4096 });
    const launch = parseVllmLaunch(start.args, start.env);
    assert.deepEqual(launch, {
      form: 'json',
      model: 'Qwen/Qwen3-8B',
      servedModelName: "qwen 3's",
      apiKey: POD_KEY,
      port: 8001,
      maxModelLen: 4096,
    });
    const pod = await rig.client.createPod(
      podRequest({ args: start.args, env: { HF_HOME: '/workspace/hf', ...start.env } }),
    );
    rig.clock.advance(SCHEDULE.provisioningMs + SCHEDULE.startingMs + SCHEDULE.loadMs);
    const url = rig.emulator.pods.url(pod.id);
    assert.equal((await fetch(`${url}/health`)).status, 200);
    const models = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${POD_KEY}` } });
    assert.equal(((await models.json()) as { data: { id: string }[] }).data[0]?.id, "qwen 3's");
    assert.equal((await fetch(`${url}/v1/models`)).status, 401);
  });
});
