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
    const running = runEmulatorCommand({ apiKey: 'emulator-key-123456', speed: 100 }, { stdout, stderr, signal: controller.signal });
    for (let i = 0; i < 200 && stdout.text().split('\n').length < 4; i++) await new Promise((r) => setTimeout(r, 5));
    const settings = Object.fromEntries(stdout.text().trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
    assert.deepEqual(Object.keys(settings), ['RUNPOD_API_URL', 'RUNPOD_API_KEY', 'RUNPOD_POD_URL_TEMPLATE']);
    assert.equal(settings.RUNPOD_API_KEY, 'emulator-key-123456');
    assert.match(settings.RUNPOD_POD_URL_TEMPLATE ?? '', /^http:\/\/127\.0\.0\.1:\d+\/proxy\/\{podId\}-\{port\}$/);
    const res = await fetch(`${settings.RUNPOD_API_URL}/v2/pods`, { headers: { authorization: 'Bearer emulator-key-123456' } });
    assert.deepEqual(await res.json(), { pods: [] });
    controller.abort();
    assert.equal(await running, 0);
    await assert.rejects(fetch(`${settings.RUNPOD_API_URL}/v2/pods`));
  });
});
