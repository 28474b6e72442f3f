import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { bringUp } from '../../src/lifecycle/bring-up.js';
import { down } from '../../src/lifecycle/down.js';
import type { RunSettings } from '../../src/lifecycle/run-settings.js';
import { isAppError } from '../../src/shared/errors.js';
import { insertPod } from '../../src/state/pods.js';
import { listReadyRoutes } from '../../src/state/routes.js';
import { activeRun, createRun } from '../../src/state/runs.js';
import { type LifecycleRig, startLifecycleRig } from './rig.js';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe("bringUp (up's reattach / resume / start choice, simulated time)", () => {
  let rig: LifecycleRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('starts a run when none is active, then reattaches to it without creating anything', async () => {
    rig = await startLifecycleRig();
    const seen: RunSettings[] = [];
    let checked = 0;
    const first = await bringUp(rig.deps, rig.settings, {
      onSettings: (s) => seen.push(s),
      beforeStart: async () => void checked++,
    });
    assert.equal(first.kind, 'started');
    assert.equal(checked, 1, 'the port check runs before a new run pays for a pod');
    assert.equal(seen.length, 1);
    assert.equal(rig.emulator.pods.created().length, 1);

    const again = await bringUp(rig.deps, rig.settings, { beforeStart: async () => void checked++ });
    assert.equal(again.kind, 'reattached');
    assert.equal(checked, 1, 'no port check when nothing is started');
    assert.equal(rig.emulator.pods.created().length, 1, 'nothing new on RunPod');
    if (again.kind !== 'reattached' || first.kind !== 'started') return;
    assert.equal(again.run.runId, first.result.run.runId);
    assert.deepEqual(
      again.pods.map((p) => p.podId),
      [first.result.pod.podId],
    );
    assert.equal(again.settings.servedModelName, rig.settings.servedModelName);
  });

  it('resumes a run whose pods are all stopped, in the same run', async () => {
    rig = await startLifecycleRig({ manager: { idle_action: 'stop' } });
    const first = await bringUp(rig.deps, rig.settings);
    assert.equal(first.kind, 'started');
    await down(rig.deps, { stop: true });
    const resumed = await bringUp(rig.deps, rig.settings);
    assert.equal(resumed.kind, 'resumed');
    if (resumed.kind !== 'resumed' || first.kind !== 'started') return;
    assert.equal(resumed.result.run.runId, first.result.run.runId);
    assert.equal(resumed.result.pod.podId, first.result.pod.podId);
    assert.equal(listReadyRoutes(rig.state)[0]?.podId, first.result.pod.podId);
  });

  it('refuses another model while a run serves one, and a run whose pod is not ready yet', async () => {
    rig = await startLifecycleRig();
    await bringUp(rig.deps, rig.settings);
    const other = await rejection(bringUp(rig.deps, rig.settings, { requestedModel: 'some/other-model' }));
    assert.ok(isAppError(other) && other.code === 'STATE_RUN_ACTIVE', String(other));
    assert.match((other as Error).message, /a run serving .* is active/);
    await down(rig.deps, { stop: false });

    // A run with a pod that has no route yet: the watchdog's to route, not up's to duplicate.
    const run = createRun(rig.state, { runtimeLimitMs: null, budgetUsd: null, config: {} });
    insertPod(rig.state, {
      podId: 'pstarting',
      name: 'runpod-llm-starting',
      runId: run.runId,
      gpuTypeId: 'NVIDIA RTX A5000',
      gpuCount: 1,
      cloud: 'SECURE',
      costPerHr: 0.27,
      model: 'm',
      status: 'STARTING',
      createdAt: rig.clock.now(),
      runtimeLimitMs: null,
      idleLimitMs: null,
      idleAction: 'terminate',
      budgetUsd: null,
      apiKey: 'k',
    });
    const starting = await rejection(bringUp(rig.deps, rig.settings));
    assert.ok(isAppError(starting) && starting.code === 'STATE_RUN_ACTIVE', String(starting));
    assert.match((starting as Error).message, /not ready yet/);
    assert.equal(activeRun(rig.state)?.runId, run.runId, 'the active run is left alone');
  });
});
