import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { up } from '../../src/lifecycle/up.js';
import type { WatchReport } from '../../src/watchdog/report.js';
import { listAudit } from '../../src/state/audit.js';
import { listActivePods } from '../../src/state/pods.js';
import { listReadyRoutes } from '../../src/state/routes.js';
import { activeRun, getRun } from '../../src/state/runs.js';
import { spendForRun } from '../../src/state/spend.js';
import { type LifecycleRig, MIN, startLifecycleRig } from './rig.js';

const types = (r: WatchReport): string[] =>
  r.actions.map((a) => `${a.action.type}${'reason' in a.action ? `:${a.action.reason}` : ''}`);
const readyPods = (rig: LifecycleRig): string[] =>
  listReadyRoutes(rig.state)
    .map((r) => r.podId ?? '')
    .sort();

describe('replicas (up --replicas N, the watchdog keeps N; simulated time)', () => {
  let rig: LifecycleRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('up creates and routes every replica; a killed one is replaced and routed again', async () => {
    rig = await startLifecycleRig({ manager: { replicas: 2, idle_limit: 'off' } });
    const result = await up(rig.deps, rig.settings);
    assert.equal(result.pods.length, 2);
    assert.equal(result.missing, 0);
    assert.equal(rig.emulator.pods.created().length, 2);
    assert.deepEqual(readyPods(rig), result.pods.map((p) => p.podId).sort(), 'routes hold all ready pods');
    assert.equal(new Set(result.pods.map((p) => p.apiKey)).size, 2, 'one key per pod');
    assert.equal(
      result.plan.worstCase.usd,
      0.27 * 2,
      'the worst case counts both pods (60 min at $0.27/h each)',
    );

    const [a, b] = result.pods;
    assert.ok(a && b);
    assert.deepEqual(types(await rig.passAt(10)), []);
    rig.emulator.pods.kill(a.podId, 'EXITED');
    assert.deepEqual(types(await rig.passAt(11)), ['recreate:died']);
    assert.deepEqual(readyPods(rig), [b.podId], 'the survivor keeps serving meanwhile');
    const fresh = listActivePods(rig.state).find((p) => p.podId !== b.podId);
    assert.ok(fresh && fresh.replacesPodId === a.podId);
    assert.equal(fresh.runtimeLimitMs, 49 * MIN);
    await rig.passAt(12);
    const routed = await rig.passAt(13);
    assert.deepEqual(types(routed), ['route_ready']);
    assert.deepEqual(readyPods(rig), [b.podId, fresh.podId].sort());
    assert.equal(listActivePods(rig.state).length, 2, 'still two, never three');
  });

  it('a replica that could not be created at up is created by the watchdog later', async () => {
    rig = await startLifecycleRig({ manager: { replicas: 2, idle_limit: 'off' } });
    const r = rig;
    const steps: string[] = [];
    const result = await up(r.deps, r.settings, {
      onStep: (text) => {
        steps.push(text);
        // RunPod runs out of GPUs right after the first pod.
        if (/^pod \w+ \(runpod-llm-\w+\) created/.test(text)) r.emulator.faults.set({ noCapacity: ['*'] });
      },
    });
    assert.equal(result.pods.length, 1);
    assert.equal(result.missing, 1);
    assert.ok(
      steps.some((t) => /replica 2 of 2 could not be created .*watchdog will retry/.test(t)),
      steps.join('\n'),
    );

    let report = await r.passAt(5);
    assert.deepEqual(types(report), ['create:replicas']);
    assert.equal(report.actions[0]?.ok, false, 'still no capacity: audited, retried next pass');
    assert.ok(listAudit(r.state).some((e) => e.action === 'create_replica_failed'));

    r.emulator.faults.set({ noCapacity: [] });
    report = await r.passAt(6);
    assert.deepEqual(types(report), ['create:replicas']);
    assert.equal(report.actions[0]?.ok, true);
    const created = listActivePods(r.state).find((p) => p.podId !== result.pod.podId);
    assert.ok(created);
    assert.equal(created.runtimeLimitMs, 54 * MIN, 'the run has 54 of its 60 minutes left');
    await r.passAt(7);
    assert.deepEqual(types(await r.passAt(8)), ['route_ready']);
    assert.equal(readyPods(r).length, 2);
    assert.deepEqual(types(await r.passAt(9)), [], 'the count is kept, nothing more is created');
  });

  it('the run budget counts the sum of the group: two pods end it in half the time', async () => {
    // $0.27/h each: the pair spends $0.009/min, so $0.10 is reached at 11.1 min; the pass at 11
    // sees the next minute would pass it (one pod alone lasts until 22, see watchdog.test.ts).
    rig = await startLifecycleRig({ manager: { replicas: 2, budget_usd: 0.1, idle_limit: 'off' } });
    const result = await up(rig.deps, rig.settings);
    assert.equal(result.pods.length, 2);
    for (let m = 2; m <= 10; m++) assert.deepEqual(types(await rig.passAt(m)), [], `minute ${m}`);
    const hit = await rig.passAt(11);
    assert.deepEqual(types(hit), ['terminate:budget_run', 'terminate:budget_run', 'end_run:budget_run']);
    assert.equal(rig.emulator.pods.list().length, 0);
    assert.equal(activeRun(rig.state), undefined);
    assert.equal(getRun(rig.state, result.run.runId)?.endReason, 'budget_run');
    const spent = spendForRun(rig.state, result.run.runId);
    assert.ok(spent > 0.09 && spent <= 0.1 + 1e-9, String(spent));
  });
});
