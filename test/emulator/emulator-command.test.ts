import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { runEmulatorCommand } from '../../src/cli/commands/emulator.js';

function capture(): Writable & { text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  }) as Writable & { text(): string };
  stream.text = () => text;
  return stream;
}

describe('runpod-llm emulator command', () => {
  it('prints the API URL, key and pod URL template, serves until aborted, then stops', async () => {
    const stdout = capture();
    const stderr = capture();
    const controller = new AbortController();
    const running = runEmulatorCommand(
      { apiKey: 'emulator-key-123456', speed: 100 },
      { stdout, stderr, signal: controller.signal },
    );
    for (let i = 0; i < 200 && stdout.text().split('\n').length < 4; i++)
      await new Promise((r) => setTimeout(r, 5));
    const settings = Object.fromEntries(
      stdout
        .text()
        .trim()
        .split('\n')
        .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
    assert.deepEqual(Object.keys(settings), ['RUNPOD_API_URL', 'RUNPOD_API_KEY', 'RUNPOD_POD_URL_TEMPLATE']);
    assert.equal(settings.RUNPOD_API_KEY, 'emulator-key-123456');
    assert.match(
      settings.RUNPOD_POD_URL_TEMPLATE ?? '',
      /^http:\/\/127\.0\.0\.1:\d+\/proxy\/\{podId\}-\{port\}$/,
    );
    const res = await fetch(`${settings.RUNPOD_API_URL}/v2/pods`, {
      headers: { authorization: 'Bearer emulator-key-123456' },
    });
    assert.deepEqual(await res.json(), { pods: [] });
    controller.abort();
    assert.equal(await running, 0);
    await assert.rejects(fetch(`${settings.RUNPOD_API_URL}/v2/pods`));
  });
});

describe('runpod-llm emulator behaviour flags', () => {
  it('--args-mode plain, --foreign-pods and --pod-key-cannot-stop reach the emulator; a bad EMULATOR_ARGS_MODE is a usage error', async () => {
    const stdout = capture();
    const stderr = capture();
    const controller = new AbortController();
    const running = runEmulatorCommand(
      { apiKey: 'emulator-key-123456', foreignPods: 2, podKeyCannotStop: true },
      { stdout, stderr, signal: controller.signal, env: { EMULATOR_ARGS_MODE: 'plain' } },
    );
    for (let i = 0; i < 200 && !stderr.text().includes('behaviour:'); i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.match(
      stderr.text(),
      /JSON start command NOT honoured \(plain args\), exited containers restart in place, pod-scoped keys cannot stop their pod, 2 foreign pod\(s\)/,
    );
    const url = /RUNPOD_API_URL=(\S+)/.exec(stdout.text())?.[1] ?? '';
    const faults = (await (
      await fetch(`${url}/_emulator/faults`, { headers: { authorization: 'Bearer emulator-key-123456' } })
    ).json()) as { argsMode: string; podKeyCanStop: boolean };
    assert.equal(faults.argsMode, 'plain');
    assert.equal(faults.podKeyCanStop, false);
    const pods = (await (
      await fetch(`${url}/v2/pods`, { headers: { authorization: 'Bearer emulator-key-123456' } })
    ).json()) as { pods: unknown[] };
    assert.equal(pods.pods.length, 2);
    controller.abort();
    assert.equal(await running, 0);

    const err = capture();
    assert.equal(
      await runEmulatorCommand({}, { stdout: capture(), stderr: err, env: { EMULATOR_ARGS_MODE: 'yaml' } }),
      2,
    );
    assert.match(err.text(), /EMULATOR_ARGS_MODE must be json or plain/);
  });
});
