import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import type { StatusData } from '../../src/doctor/status.js';
import { listAudit } from '../../src/state/audit.js';
import { openState } from '../../src/state/db.js';
import { isProcessAlive } from '../../src/state/lock.js';
import { cli, until } from './cli-rig.js';

const MODEL = 'Qwen/Qwen2.5-Coder-7B-Instruct';

/**
 * Scale to zero with the real processes: `up` leaves the detached gateway (wake_on_request) and
 * watchdog loop; the pod is stopped for idleness; a request then gets 503 model_waking while the
 * gateway writes a wake request into the state; the watchdog starts the pod again and routes it;
 * the next request is answered. The emulator runs its schedule in a few hundred milliseconds.
 */
describe('idle stop → a request wakes the pod (detached gateway and watchdog)', () => {
  let emulator: Emulator;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const pids: number[] = [];
  const status = async (): Promise<StatusData> =>
    JSON.parse((await cli(['status', '--json'], env)).stdout) as StatusData;

  before(async () => {
    emulator = await startEmulator({
      schedule: { provisioningMs: 100, startingMs: 100, loadMs: 200 },
      standin: { chunkDelayMs: 5, chunks: 4 },
    });
    home = mkdtempSync(join(tmpdir(), 'cli-wake-'));
    env = {
      RUNPOD_API_URL: emulator.apiUrl,
      RUNPOD_API_KEY: emulator.apiKey,
      RUNPOD_POD_URL_TEMPLATE: emulator.podUrlTemplate,
      RUNPOD_LLM_HOME: home,
      RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
      RUNPOD_LLM_READINESS_POLL: '100ms',
      RUNPOD_LLM_WATCH_INTERVAL: '1s',
      RUNPOD_LLM_IDLE_ACTION: 'stop',
      // Long enough for the request after the wake to land before the next idle stop (the
      // gateway re-reads routes and flushes usage once a second).
      RUNPOD_LLM_IDLE_LIMIT: '3s',
      WAKE_ON_REQUEST: 'true',
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

  it('answers 503 model_waking while stopped, wakes the pod once, and serves the next request', async () => {
    const upRun = await cli(['up'], env);
    for (const name of ['gateway', 'watchdog']) {
      const pid = Number(readFileSync(join(home, `${name}.pid`), 'utf8').trim());
      if (pid > 0) pids.push(pid);
    }
    assert.equal(upRun.code, 0, upRun.stderr);
    const endpoint = /^Endpoint: {4}(http:\/\/127\.0\.0\.1:\d+\/v1)$/m.exec(upRun.stdout)?.[1];
    const key = /^Gateway key: (rlm_\S+)/m.exec(upRun.stdout)?.[1];
    assert.ok(endpoint !== undefined && key !== undefined, upRun.stdout);
    const podId = (await status()).pods[0]?.podId ?? '';

    // No traffic: the watchdog withdraws the route, waits two route polls, then stops the pod.
    await until('the idle stop', async () =>
      (await status()).pods[0]?.desired === 'stopped' && emulator.pods.get(podId)?.status === 'EXITED'
        ? true
        : undefined,
    );

    const chat = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'wake up' }] });
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    // The gateway dropped the route before the pod went away: the very first request is told the
    // model is waking, never sent to the stopped pod (no 502).
    const waking = await fetch(`${endpoint}/chat/completions`, { method: 'POST', headers, body: chat });
    assert.equal(waking.status, 503);
    assert.ok(Number(waking.headers.get('retry-after')) > 0);
    const body = (await waking.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'model_waking');

    // The watchdog starts the same pod again and routes it; the gateway follows.
    const client = new OpenAI({ baseURL: endpoint, apiKey: key, maxRetries: 0 });
    const answer = await until('a request to succeed after the wake', async () => {
      try {
        const r = await client.chat.completions.create({
          model: MODEL,
          messages: [{ role: 'user', content: 'awake now' }],
        });
        return r.choices[0]?.message.content ?? undefined;
      } catch (err) {
        if (err instanceof OpenAI.APIError && err.status === 503 && err.code === 'model_waking')
          return undefined;
        throw err;
      }
    });
    assert.match(answer, /awake now/);
    assert.equal(emulator.pods.created().length, 1, 'started again, not recreated');
    assert.equal(emulator.pods.get(podId)?.status, 'RUNNING');

    const state = openState({ home, readonly: true });
    try {
      const wakes = listAudit(state).filter((e) => e.action === 'wake');
      assert.equal(wakes.length, 1, 'one wake, however many requests asked');
      assert.equal(wakes[0]?.details?.how, 'start');
      assert.deepEqual(wakes[0]?.details?.pods, [podId]);
    } finally {
      state.close();
    }

    const downRun = await cli(['down'], env);
    assert.equal(downRun.code, 0, downRun.stderr);
    assert.equal(emulator.pods.list().length, 0);
  });
});
