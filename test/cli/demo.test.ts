import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cli } from './cli-rig.js';

describe('runpod-llm demo', () => {
  it('runs the whole flow against the emulator and leaves no pod and no process behind', async () => {
    const run = await cli(['demo', '--speed', '4'], {});
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const out = run.stdout;
    for (const step of [
      '1. a local RunPod',
      '2. runpod-llm up --dry-run',
      '3. runpod-llm up',
      '4. the openai SDK',
      '5. runpod-llm status',
      '6. the pod URL as a stranger sees it',
      '7. vLLM on the pod crashes for good',
      '8. runpod-llm down',
    ]) {
      assert.ok(out.includes(step), `missing step "${step}"`);
    }
    assert.match(out, /streamed chat with Qwen\/Qwen2\.5-Coder-7B-Instruct: You said: Write a haiku about/);
    assert.match(out, /PASS {2}1 running pod\(s\) refuse \/invocations and \/tokenize through the pod URL/);
    assert.match(out, /recreate \w+ \(restarted\)/);
    assert.match(out, /route_ready \w+/);
    assert.match(out, /same endpoint, same key, new pod: "You said: still/);
    assert.match(out, /pods left on the \(emulated\) RunPod: 0/);
    assert.match(run.stderr, /watchdog: stopped[\s\S]*gateway: stopped/);
  });
});
