import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';

const MAIN = join(import.meta.dirname, '../../src/cli/main.ts');
const KEY = 'gw_cli_key_0123456789abcdef';

interface Run {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exit: Promise<number | null>;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => stderr, stdout: () => stdout, exit };
}

async function waitFor(run: Run, pattern: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(run.stderr());
    if (match) return match;
    if (Date.now() > end) throw new Error(`timed out waiting for ${pattern}; stderr: ${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('runpod-llm gateway (the real process)', () => {
  let pod: VllmStandin;
  let home: string;
  before(async () => {
    pod = await startVllmStandin({
      model: 'm',
      apiKey: 'pod-key-for-cli-test',
      chunkDelayMs: 100,
      chunks: 20,
    });
    home = mkdtempSync(join(tmpdir(), 'cli-gw-'));
  });
  after(async () => {
    await pod.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('serves, then on SIGTERM lets an in-flight stream finish and exits 0; RUNPOD_API_KEY is dropped', async () => {
    const logFile = join(home, 'gateway.log');
    const run = runCli(['gateway', '--port', '0'], {
      RUNPOD_LLM_HOME: home,
      UPSTREAM_URL: `${pod.url}/v1`,
      UPSTREAM_API_KEY: 'pod-key-for-cli-test',
      GATEWAY_API_KEYS: KEY,
      LOG_FILE: logFile,
      RUNPOD_API_KEY: 'rpa_should_never_be_here_000',
    });
    try {
      const [, base] = await waitFor(run, /listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/);
      assert.match(run.stderr(), /RUNPOD_API_KEY is set in the gateway's environment/);
      const res = await fetch(`${base}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'drain me' }] }),
      });
      const reader = res.body!.getReader();
      await reader.read();
      run.child.kill('SIGTERM');
      await waitFor(run, /shutting down/);
      let text = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      assert.match(text, /data: \[DONE\]\n\n$/, 'the in-flight stream completed');
      assert.equal(await run.exit, 0);
      await assert.rejects(fetch(`${base}/models`), 'no longer accepting');
      const log = readFileSync(logFile, 'utf8');
      assert.match(log, /"msg":"gateway stopped"/);
      for (const secret of [KEY, 'pod-key-for-cli-test', 'rpa_should_never_be_here_000', 'drain me'])
        assert.ok(!log.includes(secret), secret);
      assert.ok(!run.stderr().includes('rpa_should_never_be_here_000'));
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('prints a generated loopback key once, then says where it is stored', async () => {
    const keyHome = join(home, 'keys');
    const first = runCli(['gateway', '--port', '0'], {
      RUNPOD_LLM_HOME: keyHome,
      UPSTREAM_URL: `${pod.url}/v1`,
      LOG_LEVEL: 'silent',
    });
    const [, key] = await waitFor(first, /shown once; stored 0600 in .*\n\s+(rlm_\S+)/);
    first.child.kill('SIGTERM');
    assert.equal(await first.exit, 0);
    const second = runCli(['gateway', '--port', '0'], {
      RUNPOD_LLM_HOME: keyHome,
      UPSTREAM_URL: `${pod.url}/v1`,
      LOG_LEVEL: 'silent',
    });
    await waitFor(second, /gateway key: stored in/);
    assert.ok(!second.stderr().includes(key!), 'not printed again');
    second.child.kill('SIGTERM');
    assert.equal(await second.exit, 0);
  });

  it('explains a bad configuration in one line per problem plus the fix, exit code 2, no stack', async () => {
    const run = runCli(['gateway'], { RUNPOD_LLM_HOME: home, RATE_LIMIT_REQUESTS: 'lots', HOST: '0.0.0.0' });
    assert.equal(await run.exit, 2);
    const err = run.stderr();
    assert.match(err, /^error: configuration has 2 problem\(s\):/m);
    assert.match(
      err,
      /^ {2}- RATE_LIMIT_REQUESTS=lots: not a whole number \(rate_limit_requests\)$/m,
      'names what the user typed, then the setting',
    );
    assert.match(err, /^fix: /m);
    assert.ok(!/\bat .*\.ts:\d+/.test(err), 'no stack trace');
  });

  it('says the port is taken, with exit code 8', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = runCli(['gateway', '--port', String(port)], {
        RUNPOD_LLM_HOME: home,
        UPSTREAM_URL: `${pod.url}/v1`,
        GATEWAY_API_KEYS: KEY,
        LOG_LEVEL: 'silent',
      });
      assert.equal(await run.exit, 8);
      assert.match(run.stderr(), new RegExp(`error: port ${port} on 127.0.0.1 is already in use\\nfix: `));
    } finally {
      blocker.close();
    }
  });

  it('rejects bad usage with exit code 2', async () => {
    const run = runCli(['gateway', '--port', 'eighty'], { RUNPOD_LLM_HOME: home });
    assert.equal(await run.exit, 2);
    assert.match(run.stderr(), /expected a port number/);
  });
});
