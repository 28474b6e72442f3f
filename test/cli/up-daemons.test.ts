import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import { isProcessAlive } from '../../src/state/lock.js';
import { cli, until } from './cli-rig.js';

const HF_TOKEN = 'hf_test_token_never_in_the_gateway_0123';

const pidOf = (home: string, name: string): number | undefined => {
  try {
    return Number(readFileSync(join(home, `${name}.pid`), 'utf8').trim());
  } catch {
    return undefined;
  }
};

/**
 * The real thing: `up` leaves a detached gateway and watchdog loop (spawned processes of this
 * CLI) behind; an openai SDK client chats through the gateway; the watchdog loop repairs a pod
 * death by itself; `down` ends everything. The gateway process never holds RUNPOD_API_KEY.
 */
describe('up → chat → status → down with the detached gateway and watchdog', () => {
  let emulator: Emulator;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const pids: number[] = [];

  before(async () => {
    emulator = await startEmulator({
      schedule: { provisioningMs: 100, startingMs: 100, loadMs: 200 },
      standin: { chunkDelayMs: 5, chunks: 6 },
    });
    home = mkdtempSync(join(tmpdir(), 'cli-daemons-'));
    env = {
      RUNPOD_API_URL: emulator.apiUrl,
      RUNPOD_API_KEY: emulator.apiKey,
      RUNPOD_POD_URL_TEMPLATE: emulator.podUrlTemplate,
      RUNPOD_LLM_HOME: home,
      RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
      RUNPOD_LLM_READINESS_POLL: '100ms',
      RUNPOD_LLM_WATCH_INTERVAL: '1s',
      HF_TOKEN,
      HOST: '127.0.0.1',
      PORT: '0',
    };
  });
  after(async () => {
    for (const pid of pids) {
      try {
        if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await emulator.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('serves the model through the gateway, keeps the RunPod key out of it, heals a dead pod, and down ends it all', async () => {
    const upRun = await cli(['up'], env);
    const gatewayPid = pidOf(home, 'gateway');
    const watchdogPid = pidOf(home, 'watchdog');
    if (gatewayPid !== undefined) pids.push(gatewayPid);
    if (watchdogPid !== undefined) pids.push(watchdogPid);
    assert.equal(upRun.code, 0, upRun.stderr);
    assert.ok(
      gatewayPid !== undefined &&
        watchdogPid !== undefined &&
        isProcessAlive(gatewayPid) &&
        isProcessAlive(watchdogPid),
    );
    const endpoint = /^Endpoint: {4}(http:\/\/127\.0\.0\.1:\d+\/v1)$/m.exec(upRun.stdout)?.[1];
    const key = /^Gateway key: (rlm_\S+)/m.exec(upRun.stdout)?.[1];
    assert.ok(endpoint !== undefined && key !== undefined, upRun.stdout);
    assert.match(upRun.stdout, /apiBase: http:\/\/127\.0\.0\.1:\d+\/v1/);

    // The gateway's environment has no RunPod key and no HF token; the watchdog's has the key.
    const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\u0000');
    assert.ok(!environ(gatewayPid).some((v) => v.startsWith('RUNPOD_API_KEY=') || v.startsWith('HF_TOKEN=')));
    assert.ok(!environ(gatewayPid).join('\n').includes(emulator.apiKey));
    assert.ok(environ(watchdogPid).includes(`RUNPOD_API_KEY=${emulator.apiKey}`));

    const client = new OpenAI({ baseURL: endpoint, apiKey: key, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'Qwen/Qwen2.5-Coder-7B-Instruct',
      stream: true,
      messages: [{ role: 'user', content: 'hello pod' }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.match(text, /hello pod/);

    // Usage flows back from the gateway (batched about once a second) for the idle rule.
    const status = await until('usage in status', async () => {
      const s = JSON.parse((await cli(['status', '--json'], env)).stdout) as {
        usage: { requests: number };
        gateway: { running: boolean; url: string; health: string };
        watchdog: { running: boolean };
        pods: Array<{ podId: string }>;
      };
      return s.usage.requests >= 1 ? s : undefined;
    });
    assert.equal(status.gateway.running, true);
    assert.equal(status.gateway.url, endpoint);
    assert.equal(status.watchdog.running, true);
    const firstPod = status.pods[0]?.podId ?? '';

    // The pod dies; the watchdog loop (1 s passes) recreates it and routes the new one by itself.
    emulator.pods.kill(firstPod, 'EXITED');
    const fresh = await until('the watchdog to route a replacement', async () => {
      const s = JSON.parse((await cli(['status', '--json'], env)).stdout) as {
        pods: Array<{ podId: string; ready: boolean }>;
      };
      const p = s.pods[0];
      return p !== undefined && p.podId !== firstPod && p.ready ? p.podId : undefined;
    });
    const answer = await until('the gateway to follow the new route', async () => {
      try {
        const r = await client.chat.completions.create({
          model: 'Qwen/Qwen2.5-Coder-7B-Instruct',
          messages: [{ role: 'user', content: 'still there' }],
        });
        return r.choices[0]?.message.content ?? undefined;
      } catch {
        return undefined;
      }
    });
    assert.match(answer, /still there/);
    assert.ok(emulator.pods.get(fresh));
    assert.equal(emulator.pods.get(firstPod), undefined, 'the dead pod was terminated');

    const downRun = await cli(['down'], env);
    assert.equal(downRun.code, 0, downRun.stderr);
    assert.match(downRun.stderr, /watchdog: stopped[\s\S]*gateway: stopped/);
    assert.match(downRun.stdout, new RegExp(`${fresh} \\(runpod-llm-\\w+\\): terminated`));
    await until(
      'both daemons to exit',
      () => (isProcessAlive(gatewayPid) || isProcessAlive(watchdogPid) ? undefined : true),
      5_000,
    );
    assert.equal(emulator.pods.list().length, 0);
    assert.equal(pidOf(home, 'gateway'), undefined);
    assert.equal(pidOf(home, 'watchdog'), undefined);

    // Files: private, and no secret of RunPod or Hugging Face in any log.
    const logs = readdirSync(join(home, 'logs')).map((f) => join(home, 'logs', f));
    // JSON logs (rotated) and each daemon's console output of its last start.
    assert.deepEqual(logs.map((f) => f.replace(/.*\//, '')).sort(), [
      'gateway.log',
      'gateway.out',
      'watchdog.log',
      'watchdog.out',
    ]);
    for (const file of [...logs, join(home, 'state.db'), join(home, 'gateway.key')]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, file);
    }
    assert.equal(statSync(home).mode & 0o777, 0o700);
    for (const file of logs) {
      const content = readFileSync(file, 'utf8');
      assert.ok(!content.includes(emulator.apiKey), `RunPod key in ${file}`);
      assert.ok(!content.includes(HF_TOKEN), `HF token in ${file}`);
      assert.ok(!content.includes(key), `gateway key in ${file}`);
    }
    assert.match(
      readFileSync(join(home, 'logs', 'watchdog.log'), 'utf8'),
      /"type":"recreate".*"msg":"watchdog action"/,
    );
    // Access lines keep the client's network only (log_client_ip: truncated).
    const gatewayLog = readFileSync(join(home, 'logs', 'gateway.log'), 'utf8');
    assert.match(gatewayLog, /"msg":"request".*"ip":"127\.0\.0\.0\/24"/);
    assert.ok(!gatewayLog.includes('127.0.0.1"'), 'no full client address in the gateway log');
  });
});
