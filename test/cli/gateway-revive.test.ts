import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startEmulator, type Emulator } from '../../src/emulator/emulator.js';
import { readDaemon } from '../../src/daemons/detached-process.js';
import { readGatewayUrl, reviveGateway, revivalWaitMs } from '../../src/daemons/gateway-daemon.js';
import { appendAudit, listAudit } from '../../src/state/audit.js';
import { openState } from '../../src/state/db.js';
import { isProcessAlive } from '../../src/state/lock.js';
import { cli, killAll, MAIN, until } from './cli-rig.js';

const MODEL = 'Qwen/Qwen2.5-Coder-7B-Instruct';

/**
 * A gateway `up` started that dies (here SIGKILL, as the OOM killer does) is
 * started again by the next watchdog pass, on the same port, with the same key, without the
 * RunPod key in its environment, and the restart is audited. One the user stopped (`down`) or a
 * service manager runs is left alone.
 */
describe('the watchdog revives a dead gateway', () => {
  let emulator: Emulator;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const pids = new Set<number>();

  before(async () => {
    emulator = await startEmulator({
      schedule: { provisioningMs: 100, startingMs: 100, loadMs: 200 },
      standin: { chunkDelayMs: 5, chunks: 4 },
    });
    home = mkdtempSync(join(tmpdir(), 'cli-revive-'));
    env = {
      RUNPOD_API_URL: emulator.apiUrl,
      RUNPOD_API_KEY: emulator.apiKey,
      RUNPOD_POD_URL_TEMPLATE: emulator.podUrlTemplate,
      RUNPOD_LLM_HOME: home,
      RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
      RUNPOD_LLM_READINESS_POLL: '100ms',
      HOST: '127.0.0.1',
      PORT: '0',
    };
  });
  after(async () => {
    killAll(pids);
    await emulator.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('a killed gateway is back after one pass, on the same port, and the same key works', async () => {
    // No watchdog loop: this test runs the passes itself (`watch`, as cron does).
    const upRun = await cli(['up', '--no-watchdog'], env);
    const first = readDaemon(home, 'gateway');
    if (first !== null) pids.add(first.pid);
    assert.equal(upRun.code, 0, upRun.stderr);
    assert.ok(first?.running === true && !first.service);
    const endpoint = /^Endpoint: {4}(http:\/\/127\.0\.0\.1:\d+\/v1)$/m.exec(upRun.stdout)?.[1];
    const key = /^Gateway key: (rlm_\S+)/m.exec(upRun.stdout)?.[1];
    assert.ok(endpoint !== undefined && key !== undefined, upRun.stdout);
    const client = new OpenAI({ baseURL: endpoint, apiKey: key, maxRetries: 0 });
    const ask = async (content: string): Promise<string> =>
      (await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content }] }))
        .choices[0]?.message.content ?? '';
    assert.match(await ask('before'), /before/);

    process.kill(first.pid, 'SIGKILL');
    await until('the gateway to die', () => (isProcessAlive(first.pid) ? undefined : true), 5_000);
    await assert.rejects(ask('while down'), /Connection error/);

    const pass = await cli(['watch', '--json'], env);
    assert.equal(pass.code, 0, pass.stderr);
    const report = JSON.parse(pass.stdout) as {
      actions: Array<{ action: { type: string; port?: number }; ok: boolean; note?: string }>;
    };
    const restarts = report.actions.filter((a) => a.action.type === 'restart_gateway');
    assert.equal(restarts.length, 1, pass.stdout);
    assert.equal(restarts[0]?.ok, true);
    assert.equal(restarts[0]?.action.port, Number(new URL(endpoint).port));

    const second = readDaemon(home, 'gateway');
    if (second !== null) pids.add(second.pid);
    assert.ok(second?.running === true && second.pid !== first.pid);
    assert.equal(readGatewayUrl(home), endpoint, 'same address');
    assert.match(await ask('after'), /after/, 'the same key works on the same port');
    // Still no RunPod key in the gateway, though the pass that started it holds one.
    const environ = readFileSync(`/proc/${second.pid}/environ`, 'utf8');
    assert.ok(!environ.includes(emulator.apiKey) && !environ.includes('RUNPOD_API_KEY='));

    const state = openState({ home });
    try {
      const audit = listAudit(state).filter((e) => e.action.startsWith('restart_gateway'));
      assert.deepEqual(
        audit.map((e) => [e.action, e.reason, e.details?.oldPid, e.details?.pid, e.details?.port]),
        [['restart_gateway', 'gateway_dead', first.pid, second.pid, Number(new URL(endpoint).port)]],
      );
    } finally {
      state.close();
    }

    // A pass with the gateway alive restarts nothing.
    const quiet = JSON.parse((await cli(['watch', '--json'], env)).stdout) as {
      actions: Array<{ action: { type: string } }>;
    };
    assert.equal(quiet.actions.filter((a) => a.action.type === 'restart_gateway').length, 0);
    assert.equal(readDaemon(home, 'gateway')?.pid, second.pid);

    // `down` stops it on purpose: no pid file, so nothing comes back.
    assert.equal((await cli(['down'], env)).code, 0);
    await until('the gateway to stop', () => (isProcessAlive(second.pid) ? undefined : true), 15_000);
    const state2 = openState({ home });
    try {
      assert.equal(
        await reviveGateway(state2, {
          home,
          host: '127.0.0.1',
          self: { command: process.execPath, args: ['--import', 'tsx', MAIN] },
          env,
        }),
        null,
      );
    } finally {
      state2.close();
    }
  });

  it('a gateway that keeps dying is retried with a growing wait, not every pass', async () => {
    const minute = 60_000;
    assert.equal(revivalWaitMs([], 1_000_000), 0, 'the first death: at once');
    assert.equal(
      revivalWaitMs([1_000_000 - 10_000], 1_000_000),
      20_000,
      'one restart 10 s ago: 30 s after it',
    );
    assert.equal(
      revivalWaitMs([1_000_000 - 10_000, 1_000_000 - 5 * minute], 1_000_000),
      50_000,
      'two: 60 s after the last',
    );
    assert.equal(
      revivalWaitMs(
        Array.from({ length: 12 }, (_, i) => 1_000_000 - i * 1_000),
        1_000_000,
      ),
      10 * minute,
      'capped at 10 min',
    );
    assert.equal(revivalWaitMs([1_000_000 - 31 * minute], 1_000_000), 0, 'older than 30 min: forgotten');

    const h = mkdtempSync(join(tmpdir(), 'cli-revive-again-'));
    try {
      writeFileSync(join(h, 'gateway.pid'), `${2 ** 22 - 5}\n`, { mode: 0o600 });
      writeFileSync(join(h, 'gateway.url'), 'http://127.0.0.1:9/v1\n', { mode: 0o600 });
      const state = openState({ home: h });
      try {
        appendAudit(state, {
          action: 'restart_gateway',
          reason: 'gateway_dead',
          at: Date.now() - 5_000,
          details: { port: 9 },
        });
        const r = await reviveGateway(state, {
          home: h,
          host: '127.0.0.1',
          self: { command: process.execPath, args: ['--import', 'tsx', MAIN] },
          env: {},
        });
        assert.equal(r?.kind, 'deferred');
        assert.ok(r?.kind === 'deferred' && r.retryInMs > 20_000 && r.retryInMs <= 25_000, JSON.stringify(r));
        assert.match(
          r?.note ?? '',
          /the gateway died again \(1 restart\(s\) in the last 30 min\): next try in 2\d s/,
        );
        assert.equal(listAudit(state).length, 1, 'nothing started, nothing audited');
      } finally {
        state.close();
      }
    } finally {
      rmSync(h, { recursive: true, force: true });
    }
  });

  it('leaves alone a dead gateway a service manager runs (it restarts it itself)', async () => {
    const h = mkdtempSync(join(tmpdir(), 'cli-revive-svc-'));
    try {
      // A pid no process can have (above Linux's default pid_max and macOS's 99999).
      const dead = 2 ** 22 - 3;
      assert.equal(isProcessAlive(dead), false);
      writeFileSync(join(h, 'gateway.pid'), `${dead}\nservice\n`, { mode: 0o600 });
      writeFileSync(join(h, 'gateway.url'), 'http://127.0.0.1:9/v1\n', { mode: 0o600 });
      const state = openState({ home: h });
      try {
        assert.equal(readDaemon(h, 'gateway')?.service, true);
        assert.equal(
          await reviveGateway(state, {
            home: h,
            host: '127.0.0.1',
            self: { command: process.execPath, args: ['--import', 'tsx', MAIN] },
            env: {},
          }),
          null,
        );
        assert.equal(listAudit(state).length, 0);
      } finally {
        state.close();
      }
    } finally {
      rmSync(h, { recursive: true, force: true });
    }
  });
});
