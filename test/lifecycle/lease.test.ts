import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import {
  lastSelfStop,
  leasedPods,
  parseLeaseAnswer,
  renewLeases,
  SELF_STOP_AUDIT,
} from '../../src/lifecycle/lease.js';
import type { ManagerDeps } from '../../src/lifecycle/manager-deps.js';
import { createRunPodClient } from '../../src/runpod/client.js';
import { systemClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import {
  createRun,
  insertPod,
  listActivePods,
  listAudit,
  markPodReady,
  openState,
  type PodRow,
  type StateDb,
  updatePodSeen,
} from '../../src/state/index.js';
import { type RunningGuard, startGuard } from '../guard/run-guard.js';

const KEY = 'vk_lease_renewal_0123456789abcdef';

/**
 * The watchdog's half of the guard's self-stop: each pass renews the lease of every ready guarded
 * pod, here against the real guard (python3 on src/guard/guard.py). The pod URL template
 * `http://{podId}:<port>` with the pod id `127.0.0.1` points the pod URL at the guard.
 */
describe('watchdog: lease renewals', () => {
  let home: string;
  let state: StateDb;
  let vllm: VllmStandin;
  let guard: RunningGuard;
  let logged = '';
  let deps: ManagerDeps;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'lease-'));
    state = openState({ home });
    vllm = await startVllmStandin({ model: 'm', apiKey: KEY });
    guard = await startGuard({ GUARD_UPSTREAM: vllm.url, GUARD_API_KEY: KEY });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString('utf8');
        done();
      },
    });
    deps = {
      state,
      api: createRunPodClient({ baseUrl: 'http://127.0.0.1:1', apiKey: 'unused' }),
      clock: systemClock,
      sleep: async () => {},
      fetch: globalThis.fetch,
      logger: createLogger({ level: 'debug', destination: sink }),
    };
    const run = createRun(state, { runtimeLimitMs: null, budgetUsd: null });
    const pod = (podId: string, over: Partial<PodRow> = {}): void => {
      insertPod(state, {
        podId,
        name: `runpod-llm-${podId.replace(/\W/g, '').slice(0, 8).padEnd(8, 'x')}`,
        runId: run.runId,
        gpuTypeId: 'NVIDIA RTX A5000',
        gpuCount: 1,
        cloud: 'SECURE',
        costPerHr: 0.27,
        model: 'm',
        status: 'RUNNING',
        createdAt: Date.now(),
        runtimeLimitMs: null,
        idleLimitMs: null,
        idleAction: null,
        budgetUsd: null,
        apiKey: KEY,
        guard: '2',
        ...over,
      });
      markPodReady(state, podId);
    };
    pod('127.0.0.1');
    pod('unguarded', { guard: null });
    pod('parked', { desired: 'stopped' });
    pod('exited');
    updatePodSeen(state, 'exited', { status: 'EXITED' });
    insertPod(state, {
      podId: 'booting',
      name: 'runpod-llm-bootingx',
      runId: run.runId,
      gpuTypeId: 'g',
      gpuCount: 1,
      cloud: 'SECURE',
      costPerHr: 0.27,
      model: 'm',
      status: 'STARTING',
      createdAt: Date.now(),
      runtimeLimitMs: null,
      idleLimitMs: null,
      idleAction: null,
      budgetUsd: null,
      apiKey: KEY,
      guard: '2',
    });
  });
  after(async () => {
    await guard.close();
    await vllm.close();
    state.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('leases only ready, guarded pods wanted running and not seen stopped', () => {
    assert.deepEqual(
      leasedPods(listActivePods(state)).map((p) => p.podId),
      ['127.0.0.1'],
    );
  });

  it('renews through the pod URL with the pod key; a v3 guard says whether its pod can stop itself, audited once per change', async () => {
    const before = guard.lines().length;
    const renewed = await renewLeases(deps, { podUrlTemplate: `http://{podId}:${guard.port}` });
    // This guard has no RUNPOD_POD_ID / RUNPOD_API_KEY in its env: it cannot stop its pod.
    assert.deepEqual(renewed, [{ podId: '127.0.0.1', outcome: 200, renewed: true, selfStop: 'missing' }]);
    for (
      let i = 0;
      i < 50 &&
      !guard
        .lines()
        .slice(before)
        .some((l) => /^guard POST \/runpod-llm\/lease 200 \d+ms$/.test(l));
      i++
    )
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      guard
        .lines()
        .slice(before)
        .some((l) => /^guard POST \/runpod-llm\/lease 200 \d+ms$/.test(l)),
      guard.lines().join('\n'),
    );
    assert.equal(
      vllm.requests.filter((r) => r.path.includes('lease')).length,
      0,
      'the lease never reaches vLLM',
    );
    assert.equal(lastSelfStop({ state }, '127.0.0.1'), 'missing');
    assert.match(logged, /this pod cannot stop itself: RunPod put no pod id or pod key in its environment/);
    await renewLeases(deps, { podUrlTemplate: `http://{podId}:${guard.port}` });
    assert.equal(
      listAudit(state, { podId: '127.0.0.1' }).filter((e) => e.action === SELF_STOP_AUDIT).length,
      1,
      'the same verdict is audited once',
    );
  });

  it("accepts a v2 guard's 204 (no verdict) and refuses anything that is not a guard's answer", () => {
    assert.deepEqual(parseLeaseAnswer(204, ''), { renewed: true });
    assert.deepEqual(
      parseLeaseAnswer(200, '{"guard":"3","lease_seconds":900,"stop_at":null,"self_stop":"refused"}'),
      { renewed: true, guard: '3', selfStop: 'refused' },
    );
    assert.deepEqual(parseLeaseAnswer(200, '{"guard":"4","self_stop":"something-new","extra":1}'), {
      renewed: true,
      guard: '4',
    });
    assert.deepEqual(parseLeaseAnswer(200, '<html>proxy page</html>'), { renewed: false });
    assert.deepEqual(parseLeaseAnswer(200, '[1]'), { renewed: false });
    assert.deepEqual(parseLeaseAnswer(401, '{"error":"Unauthorized"}'), { renewed: false });
    assert.deepEqual(parseLeaseAnswer(502, ''), { renewed: false });
  });

  it('a pod that cannot be reached is logged, without its key, and the pass goes on', async () => {
    logged = '';
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const renewed = await renewLeases(deps, { podUrlTemplate: `http://{podId}:${closed}`, timeoutMs: 2_000 });
    assert.equal(renewed.length, 1);
    assert.equal(renewed[0]?.outcome, 'ECONNREFUSED');
    assert.match(logged, /could not renew the guard's lease/);
    assert.ok(!logged.includes(KEY));
  });
});
