import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { shellStartArgs } from '../../src/lifecycle/create-request.js';
import { chooseStartForm } from '../../src/lifecycle/start-form.js';
import { up } from '../../src/lifecycle/up.js';
import { AppError } from '../../src/shared/errors.js';
import { getRun } from '../../src/state/runs.js';
import { setVerdict } from '../../src/state/verdicts.js';
import { type LifecycleRig, startLifecycleRig } from './rig.js';

/**
 * "up uses the verdict": honoured or unknown → the guarded JSON start command;
 * not honoured → the same guarded script base64-packed for an image without an entrypoint, or a
 * clear stop before anything is created. Against the emulator in both of its args modes.
 */
describe('up picks its start recipe from the doctor --live verdict', () => {
  let rig: LifecycleRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('unknown (never probed): the guarded JSON start command', async () => {
    const r = (rig = await startLifecycleRig());
    const result = await up(r.deps, r.settings);
    const pod = r.emulator.pods.created()[0];
    assert.ok(pod?.request.args.startsWith('{"entrypoint":["bash","-c"]'));
    assert.equal(getRun(r.state, result.run.runId)?.config.startForm, 'json');
  });

  it('not honoured + the stock image: stops before creating anything, naming the options (exit 2)', async () => {
    const r = (rig = await startLifecycleRig({ emulator: { behaviour: { argsMode: 'plain' } } }));
    setVerdict(r.state, {
      name: 'json_start_command',
      value: 'not_honoured',
      detail: 'args came back as plain arguments',
    });
    let error: unknown;
    try {
      await up(r.deps, r.settings);
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof AppError, String(error));
    assert.equal(exitCodeFor(error), 2);
    assert.match(error.message, /does not honour the JSON start command .*nothing was created/);
    assert.match(error.hint ?? '', /docker\/vllm-noentry.*--image.*--unguarded.*doctor --live/);
    assert.equal(r.emulator.pods.created().length, 0);
  });

  it('not honoured + an image without an entrypoint: the guarded script as a base64-packed shell command; the pod becomes ready behind the guard', async () => {
    const r = (rig = await startLifecycleRig({
      emulator: { behaviour: { argsMode: 'plain' } },
      manager: { vllm_image: 'example/vllm-noentry:v0.11.0' },
    }));
    setVerdict(r.state, { name: 'json_start_command', value: 'not_honoured' });
    const result = await up(r.deps, r.settings);
    const pod = r.emulator.pods.created()[0];
    assert.match(
      pod?.request.args ?? '',
      /^bash -c 'echo [A-Za-z0-9+/=]+ \| base64 -d > \/tmp\/runpod-llm-start\.sh && exec bash \/tmp\/runpod-llm-start\.sh'$/,
    );
    assert.ok(
      !(pod?.request.args ?? '').includes(pod?.request.env.VLLM_API_KEY ?? '-'),
      'the pod key is on no command line',
    );
    assert.equal(getRun(r.state, result.run.runId)?.config.startForm, 'shell');
    assert.ok(
      r.emulator.pods.logs(result.pod.podId).some((l) => l.line.startsWith('runpod-llm: start guard')),
    );
    // Behind the guard: /invocations is refused on the public URL.
    const open = await fetch(`${r.emulator.pods.url(result.pod.podId)}/invocations`, {
      method: 'POST',
      body: '{}',
    });
    assert.equal(open.status, 404);
  });

  it('honoured: JSON form, and --unguarded is never changed by a verdict', () => {
    const base = { guarded: true, image: 'vllm/vllm-openai:v0.11.0' } as Parameters<
      typeof chooseStartForm
    >[0];
    const honoured = {
      name: 'json_start_command' as const,
      value: 'honoured' as const,
      checkedAt: 0,
      detail: null,
    };
    assert.equal(chooseStartForm(base, honoured).startForm, 'json');
    const unguarded = { ...base, guarded: false, startForm: 'json' as const };
    assert.equal(chooseStartForm(unguarded, { ...honoured, value: 'not_honoured' }), unguarded);
  });

  it('shellStartArgs packs any script into safe characters that unpack to the same bytes', () => {
    const script = `echo "it's $HOME" && printf '%s\\n' "a | b; c"\n`;
    const args = shellStartArgs(script);
    const packed = /echo ([A-Za-z0-9+/=]+) \|/.exec(args)?.[1] ?? '';
    assert.equal(Buffer.from(packed, 'base64').toString('utf8'), script);
    assert.match(args, /^[A-Za-z0-9+/=|>&.' -]+$/);
  });

  it('ships the Dockerfile: FROM the pinned vllm/vllm-openai tag, empty ENTRYPOINT', () => {
    const text = readFileSync(join(import.meta.dirname, '../../docker/vllm-noentry/Dockerfile'), 'utf8');
    assert.match(text, /^ARG VLLM_TAG=v\d+\.\d+\.\d+$/m);
    assert.match(text, /^FROM vllm\/vllm-openai:\$\{VLLM_TAG\}$/m);
    assert.match(text, /^ENTRYPOINT \[\]$/m);
    assert.ok(!/:latest/.test(text));
  });
});
