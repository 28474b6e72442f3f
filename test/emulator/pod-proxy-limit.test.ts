import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runEmulatorCommand } from '../../src/cli/commands/emulator.js';
import { DEFAULT_PROXY_IDLE_LIMIT_MS } from '../../src/emulator/pod-proxy.js';
import { podRequest, POD_KEY, startRig, type Rig } from './setup.js';

const MODEL = 'qwen-coder';

describe("the emulator's pod proxy enforces Cloudflare's limit (524 without a response byte)", () => {
  let rig: Rig;
  let podId: string;
  let url: string;
  before(async () => {
    rig = await startRig({ proxyIdleLimitMs: 400, standin: { chunks: 10 } });
    podId = (await rig.client.createPod(podRequest())).id;
    rig.clock.advance(10_000);
    await rig.client.getPod(podId);
    url = rig.emulator.pods.url(podId);
  });
  after(() => rig.emulator.close());

  const chat = (extra: object = {}): RequestInit => ({
    method: 'POST',
    headers: { authorization: `Bearer ${POD_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });

  it('answers 524 with a Cloudflare page when a non-streamed answer takes longer than the limit', async () => {
    rig.emulator.pods.standin(podId)?.setFault({ kind: 'generation_time', ms: 1_200 });
    const res = await fetch(`${url}/v1/chat/completions`, chat());
    assert.equal(res.status, 524);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(res.headers.get('server'), 'cloudflare');
    assert.match(res.headers.get('cf-ray') ?? '', /^[0-9a-f]{16}-[A-Z]{3}$/);
    const page = await res.text();
    assert.match(page, /524: A timeout occurred/);
    assert.match(page, /Error code 524/);
  });

  it('lets a stream of the same length through: its bytes keep coming', async () => {
    rig.emulator.pods.standin(podId)?.setFault({ kind: 'generation_time', ms: 1_200 });
    const res = await fetch(`${url}/v1/chat/completions`, chat({ stream: true }));
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /data: \[DONE\]/);
    assert.equal(text.match(/^data: \{/gm)?.length, 12);
  });

  it('serves answers faster than the limit unchanged', async () => {
    rig.emulator.pods.standin(podId)?.setFault({ kind: 'generation_time', ms: 50 });
    const res = await fetch(`${url}/v1/chat/completions`, chat());
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { object: string }).object, 'chat.completion');
  });

  it('cuts a stream that goes quiet for longer than the limit after its headers', async () => {
    rig.emulator.pods.standin(podId)?.setFault({ kind: 'stall_mid_stream', afterChunks: 2 });
    const res = await fetch(`${url}/v1/chat/completions`, chat({ stream: true }));
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
    rig.emulator.pods.standin(podId)?.setFault({ kind: 'none' });
  });
});

describe('the limit setting', () => {
  it('defaults to 100 s, as on RunPod', () => {
    assert.equal(DEFAULT_PROXY_IDLE_LIMIT_MS, 100_000);
  });

  it('`runpod-llm emulator` reads EMULATOR_PROXY_IDLE_LIMIT (seconds) and refuses a bad value with the usage exit code', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const sink = (into: string[]) =>
      ({ write: (s: string) => void into.push(s) }) as unknown as NodeJS.WritableStream;
    const code = await runEmulatorCommand(
      {},
      { stdout: sink(out), stderr: sink(err), env: { EMULATOR_PROXY_IDLE_LIMIT: 'soon' } },
    );
    assert.equal(code, 2);
    assert.match(err.join(''), /EMULATOR_PROXY_IDLE_LIMIT must be seconds/);
    assert.equal(out.join(''), '');

    const controller = new AbortController();
    const running = runEmulatorCommand(
      { speed: 100 },
      {
        stdout: sink(out),
        stderr: sink(err),
        env: { EMULATOR_PROXY_IDLE_LIMIT: '2.5' },
        signal: controller.signal,
      },
    );
    const deadline = Date.now() + 10_000;
    while (!err.join('').includes('pod proxy:') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    assert.equal(await running, 0);
    assert.match(err.join(''), /pod proxy: 524 after 2\.5 s without a response byte/);
  });
});
