import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { statusData } from '../../src/doctor/status.js';
import { up, type UpResult } from '../../src/lifecycle/up.js';
import type { WatchReport } from '../../src/watchdog/report.js';
import { listAudit } from '../../src/state/audit.js';
import { getPod, listActivePods } from '../../src/state/pods.js';
import { activeRun, getRun } from '../../src/state/runs.js';
import { type LifecycleRig, startLifecycleRig } from '../lifecycle/rig.js';

/*
 * Crash loops against the emulator's live behaviour: a crashed vLLM is restarted in place by
 * RunPod (RUNNING throughout, 502, uptime back to 0), so the watchdog must see it from the
 * uptime and the health check, not from the status. Passes one simulated minute apart.
 */

const types = (r: WatchReport): string[] =>
  r.actions.map((a) => `${a.action.type}${'reason' in a.action ? `:${a.action.reason}` : ''}`);

describe('watchdog: crash loops after readiness', () => {
  let rig: LifecycleRig | undefined;
  let started: UpResult;
  const boot = async (
    manager: NonNullable<Parameters<typeof startLifecycleRig>[0]>['manager'] = {},
    emulator: NonNullable<Parameters<typeof startLifecycleRig>[0]>['emulator'] = {},
  ): Promise<LifecycleRig> => {
    rig = await startLifecycleRig({ manager: { idle_limit: 'off', ...manager }, emulator });
    started = await up(rig.deps, rig.settings);
    return rig;
  };
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('a crash loop after readiness is replaced within three watchdog passes, the reason audited', async () => {
    const r = await boot();
    assert.deepEqual(types(await r.passAt(2)), []);
    r.emulator.pods.crash(started.pod.podId, true);
    const seen: string[][] = [];
    let replacedAt: number | undefined;
    for (let pass = 1; pass <= 3 && replacedAt === undefined; pass++) {
      const report = await r.passAt(2 + pass);
      seen.push(types(report));
      if (report.actions.some((a) => a.action.type === 'recreate' && a.ok)) replacedAt = pass;
    }
    assert.ok(replacedAt !== undefined && replacedAt <= 3, JSON.stringify(seen));
    assert.equal(
      r.emulator.pods.get(started.pod.podId),
      undefined,
      'the crash-looping pod is gone from RunPod',
    );
    const audit = listAudit(r.state).find((e) => e.action === 'recreate');
    assert.equal(audit?.reason, 'restarted');
    assert.equal(getPod(r.state, started.pod.podId)?.endReason, 'restarted');
    // The replacement is a fresh pod that loads and gets routed by the next passes.
    const replacement = listActivePods(r.state)[0];
    assert.ok(replacement !== undefined && replacement.podId !== started.pod.podId);
    let routed = false;
    for (let m = 6; m <= 10 && !routed; m++)
      routed = (await r.passAt(m)).actions.some((a) => a.action.type === 'route_ready');
    assert.ok(routed, 'the replacement was routed');
  });

  it('a pod whose /health fails on three passes in a row (RUNNING, no restart) is recreated as unhealthy', async () => {
    const r = await boot();
    await r.passAt(2);
    r.emulator.pods.standin(started.pod.podId)?.setHealthy(false);
    assert.deepEqual(types(await r.passAt(3)), []);
    assert.deepEqual(types(await r.passAt(4)), []);
    assert.deepEqual(types(await r.passAt(5)), ['recreate:unhealthy']);
  });

  it('a model that cannot load: every pod crash-loops, the bound stops the recreations, the run ends, status says why', async () => {
    const r = await boot({ max_recreations: 1 });
    await r.passAt(2);
    r.emulator.pods.crash(started.pod.podId, true);
    let minute = 3;
    let report = await r.passAt(minute);
    assert.deepEqual(types(report), ['recreate:restarted']);
    // The replacement loads, is routed, then crashes too.
    const second = listActivePods(r.state)[0]?.podId ?? '';
    for (minute = 4; minute < 10 && getPod(r.state, second)?.readyAt === null; minute++)
      await r.passAt(minute);
    assert.ok(getPod(r.state, second)?.readyAt !== null, 'replacement routed');
    r.emulator.pods.crash(second, true);
    report = await r.passAt(minute + 1);
    assert.deepEqual(types(report), ['terminate:recreate_limit', 'end_run:recreate_limit']);
    assert.match(report.actions[0]?.note ?? '', /already recreated 1 pod\(s\) \(manager\.max_recreations\)/);
    assert.equal(r.emulator.pods.list().length, 0, 'nothing left billing');
    assert.equal(activeRun(r.state), undefined);
    assert.equal(getRun(r.state, started.run.runId)?.endReason, 'recreate_limit');
    const status = await statusData({
      state: r.state,
      api: r.api,
      clock: r.clock,
      fetch: globalThis.fetch,
      fallback: r.settings,
    });
    assert.equal(status.lastRun?.endReason, 'recreate_limit');
    assert.ok(status.recent.some((e) => e.action === 'terminate' && e.reason === 'recreate_limit'));
  });

  it("other tools' pods with off-spec values on the account break no pass and are never acted on, even with --reap", async () => {
    const r = await boot({}, { foreignPods: 3 });
    for (let m = 2; m <= 4; m++) {
      const report = await r.passAt(m, { reap: true });
      assert.equal(report.unreachable, null);
      assert.deepEqual(types(report), []);
    }
    const status = await statusData({
      state: r.state,
      api: r.api,
      clock: r.clock,
      fetch: globalThis.fetch,
      fallback: r.settings,
    });
    assert.equal(status.runpod, 'live');
    assert.equal(status.pods[0]?.status, 'RUNNING');
    assert.deepEqual(r.emulator.pods.foreignActions(), []);
  });

  it('one list per pass: no per-pod get, whatever the number of pods', async () => {
    const r = await boot({ replicas: 2 });
    const calls: string[] = [];
    const api = new Proxy(r.api, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(prop));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    await r.passAt(2, { deps: { ...r.deps, api } });
    assert.deepEqual(calls, ['listPods']);
  });
});
