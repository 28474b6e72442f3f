import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseVllmLaunch, tokenize } from '../../src/emulator/pod-args.js';

describe('parseVllmLaunch', () => {
  it('reads plain vllm serve arguments', () => {
    const launch = parseVllmLaunch(
      'Qwen/Qwen2.5-Coder-7B-Instruct --host 0.0.0.0 --port 8000 --served-model-name coder --max-model-len 32k --api-key k1 --gpu-memory-utilization 0.90',
    );
    assert.deepEqual(launch, {
      form: 'args',
      model: 'Qwen/Qwen2.5-Coder-7B-Instruct',
      servedModelName: 'coder',
      apiKey: 'k1',
      port: 8000,
      maxModelLen: 32768,
    });
  });

  it('accepts --flag=value, --model, and falls back to the model name and env VLLM_API_KEY', () => {
    const launch = parseVllmLaunch('--model=meta-llama/Llama-3.1-8B --port=8001', {
      VLLM_API_KEY: 'from-env',
    });
    assert.equal(launch.model, 'meta-llama/Llama-3.1-8B');
    assert.equal(launch.servedModelName, 'meta-llama/Llama-3.1-8B');
    assert.equal(launch.apiKey, 'from-env');
    assert.equal(launch.port, 8001);
  });

  it('finds vLLM inside the JSON start command, after other shell steps, with env expansion', () => {
    const cmd =
      'pip install -q x && exec vllm serve \'Qwen/Qwen3-8B\' --port 8000 --served-model-name "qwen 3" --api-key ${VLLM_API_KEY} ; echo done';
    const launch = parseVllmLaunch(JSON.stringify({ entrypoint: ['bash', '-c'], cmd: [cmd] }), {
      VLLM_API_KEY: 'k2',
    });
    assert.deepEqual(launch, {
      form: 'json',
      model: 'Qwen/Qwen3-8B',
      servedModelName: 'qwen 3',
      apiKey: 'k2',
      port: 8000,
      maxModelLen: undefined,
    });
  });

  it('understands the older python -m api_server entrypoint in a start command', () => {
    const cmd =
      'python3 -m vllm.entrypoints.openai.api_server --model mistralai/Mistral-7B --served-model-name m7 --api-key k3';
    const launch = parseVllmLaunch(JSON.stringify({ entrypoint: ['bash', '-c'], cmd: [cmd] }));
    assert.equal(launch.model, 'mistralai/Mistral-7B');
    assert.equal(launch.servedModelName, 'm7');
    assert.equal(launch.apiKey, 'k3');
  });

  it('has no key when none is given (vLLM then leaves /v1 open)', () => {
    assert.equal(parseVllmLaunch('some/model').apiKey, undefined);
  });

  it('tokenizes quotes, escapes and separators like a shell', () => {
    assert.deepEqual(tokenize(`a "b c" 'd $X' e\\ f $X&&g;h`, { X: 'x' }), [
      'a',
      'b c',
      'd $X',
      'e f',
      'x',
      '&&',
      'g',
      ';',
      'h',
    ]);
  });
});
