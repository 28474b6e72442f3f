import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { down } from '../../src/lifecycle/down.js';
import { resumeRun } from '../../src/lifecycle/resume.js';
import { up, type UpResult } from '../../src/lifecycle/up.js';
import type { WatchReport } from '../../src/watchdog/report.js';
import { createRunPodClient } from '../../src/runpod/client.js';
import { listAudit } from '../../src/state/audit.js';
import { INSTALL_ENV, installId } from '../../src/state/install.js';
import { getPod, listActivePods, PROBE_NAME_PREFIX } from '../../src/state/pods.js';
import { listReadyRoutes, listRoutes } from '../../src/state/routes.js';
import { activeRun, getRun } from '../../src/state/runs.js';
import { spendForRun } from '../../src/state/spend.js';
import { recordUsageBatch } from '../../src/state/usage.js';
import { type LifecycleRig, MIN, startLifecycleRig, T0 } from '../lifecycle/rig.js';

const types = (r: WatchReport): string[] =>
  r.actions.map((a) => `${a.action.type}${'reason' in a.action ? `:${a.action.reason}` : ''}`);

/** Passes every simulated minute from `from` to `to`; returns the first minute with a terminate. */
async function passUntilTerminate(
  rig: LifecycleRig,
  from: number,
  to: number,
): Promise<{ minute: number; report: WatchReport } | undefined> {
  for (let m = from; m <= to; m++) {
    const report = await rig.passAt(m);
    if (report.actions.some((a) => a.action.type === 'terminate')) return { minute: m, report };
  }
  return undefined;
}

describe('watchdog (one pass = decide + thin execution, simulated time)', () => {
  let rig: LifecycleRig | undefined;
  let started: UpResult;
  const boot = async (manager: Parameters<typeof startLifecycleRig>[0] = {}): Promise<LifecycleRig> => {
    rig = await startLifecycleRig(manager);
    started = await up(rig.deps, rig.settings);
    return rig;
  };
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('terminates at the runtime limit, not a minute before, and ends the run', async () => {
    const r = await boot({ manager: { idle_limit: 'off' } });
    const hit = await passUntilTerminate(r, 2, 70);
    assert.equal(hit?.minute, 60);
    assert.deepEqual(types(hit.report), ['terminate:runtime_limit', 'end_run:runtime_limit']);
    assert.equal(r.emulator.pods.list().length, 0, 'gone on RunPod');
    assert.equal(activeRun(r.state), undefined);
    assert.equal(getRun(r.state, started.run.runId)?.endReason, 'runtime_limit');
    assert.equal(listRoutes(r.state).length, 0, 'no route left for the gateway');
    const audit = listAudit(r.state).find((e) => e.action === 'terminate');
    assert.equal(audit?.reason, 'runtime_limit');
    assert.equal(audit?.podId, started.pod.podId);
    // Billed at $0.27/h for 60 minutes, booked by the passes.
    assert.ok(
      Math.abs(spendForRun(r.state, started.run.runId) - 0.27) < 1e-6,
      String(spendForRun(r.state, started.run.runId)),
    );
  });

  it('terminates after 15 idle minutes counted from the last gateway request', async () => {
    const r = await boot();
    recordUsageBatch(r.state, [
      { routeId: started.pod.podId, lastRequestAt: T0 + 5 * MIN, requests: 3, tokensIn: 30, tokensOut: 90 },
    ]);
    const hit = await passUntilTerminate(r, 2, 40);
    assert.equal(hit?.minute, 20);
    assert.deepEqual(types(hit.report), ['terminate:idle', 'end_run:idle']);
    assert.equal(r.emulator.pods.list().length, 0);
  });

  it('stops an idle pod when idle_action is stop; up resumes it and routes it again', async () => {
    const r = await boot({ manager: { idle_action: 'stop', idle_limit: '10m' } });
    // Never used: idle counts from the time it became ready (~1.5 min).
    let report = await r.passAt(11);
    assert.deepEqual(types(report), []);
    report = await r.passAt(12);
    assert.deepEqual(types(report), ['stop:idle']);
    assert.equal(r.emulator.pods.get(started.pod.podId)?.status, 'EXITED');
    assert.equal(listReadyRoutes(r.state).length, 0, 'no traffic to a stopped pod');
    assert.ok(activeRun(r.state), 'the run stays, parked');
    assert.deepEqual(types(await r.passAt(13)), [], 'a parked pod stays parked');

    const resumed = await resumeRun(r.deps, started.run, r.settings);
    assert.equal(resumed?.pod.podId, started.pod.podId);
    assert.equal(resumed?.replaced, false);
    assert.equal(r.emulator.pods.get(started.pod.podId)?.status, 'RUNNING');
    assert.equal(listReadyRoutes(r.state)[0]?.podId, started.pod.podId);
    assert.equal(getPod(r.state, started.pod.podId)?.desired, 'running');
  });

  it('terminates on the run budget before the next check would pass it', async () => {
    // $0.27/h: $0.10 is reached at 22.2 min; with 1-minute checks the pass at 22 min sees it coming.
    const r = await boot({ manager: { budget_usd: 0.1, idle_limit: 'off' } });
    const hit = await passUntilTerminate(r, 2, 30);
    assert.equal(hit?.minute, 22);
    assert.deepEqual(types(hit.report), ['terminate:budget_run', 'end_run:budget_run']);
    assert.ok(spendForRun(r.state, started.run.runId) <= 0.1 + 1e-9);
  });

  it('recreates a dead pod with the remaining runtime, routes the new one once ready, and still ends at the limit', async () => {
    const r = await boot({ manager: { idle_limit: 'off' } });
    assert.deepEqual(types(await r.passAt(19)), []);
    r.emulator.pods.kill(started.pod.podId, 'EXITED');
    const report = await r.passAt(20);
    assert.deepEqual(types(report), ['recreate:died']);
    const [fresh] = listActivePods(r.state);
    assert.ok(fresh && fresh.podId !== started.pod.podId);
    assert.equal(fresh.runtimeLimitMs, 40 * MIN, '60 min minus the 20 already used');
    assert.equal(fresh.replacesPodId, started.pod.podId);
    assert.equal(fresh.restarts, 1);
    assert.equal(fresh.gpuTypeId, started.pod.gpuTypeId);
    assert.equal(getPod(r.state, started.pod.podId)?.endReason, 'died');
    assert.equal(
      r.emulator.pods.get(started.pod.podId),
      undefined,
      'the dead pod is terminated, not left to bill its volume',
    );
    assert.equal(listReadyRoutes(r.state).length, 0, 'no traffic until the new pod answers');
    assert.equal((await r.passAt(21)).pending, 1);
    const routed = await r.passAt(22);
    assert.deepEqual(types(routed), ['route_ready']);
    assert.equal(listReadyRoutes(r.state)[0]?.baseUrl, `${r.emulator.pods.url(fresh.podId)}/v1`);
    assert.notEqual(listReadyRoutes(r.state)[0]?.apiKey, started.pod.apiKey, 'a fresh key per pod');
    const hit = await passUntilTerminate(r, 23, 70);
    assert.equal(hit?.minute, 60, 'the run limit counts from the run start, not the new pod');
  });

  it('gives a pod recreated near the limit at least 5 minutes', async () => {
    const r = await boot({ manager: { idle_limit: 'off' } });
    r.emulator.pods.kill(started.pod.podId, 'ERROR');
    assert.deepEqual(types(await r.passAt(58)), ['recreate:error']);
    assert.equal(listActivePods(r.state)[0]?.runtimeLimitMs, 5 * MIN);
    const hit = await passUntilTerminate(r, 59, 70);
    assert.equal(hit?.minute, 63);
  });

  it('does nothing destructive while RunPod is unreachable, even past the limit', async () => {
    const r = await boot({ manager: { idle_limit: 'off' } });
    const dead = createRunPodClient({ baseUrl: 'http://127.0.0.1:9', apiKey: r.emulator.apiKey, retries: 0 });
    const report = await r.passAt(61, { deps: { ...r.deps, api: dead } });
    assert.ok(report.unreachable !== null);
    assert.deepEqual(types(report), ['noop_unreachable']);
    assert.equal(r.emulator.pods.get(started.pod.podId)?.status, 'RUNNING');
    assert.equal(getPod(r.state, started.pod.podId)?.desired, 'running');
    assert.ok(listAudit(r.state).some((e) => e.action === 'noop_unreachable'));
    assert.deepEqual(
      types(await r.passAt(62)),
      ['terminate:runtime_limit', 'end_run:runtime_limit'],
      'and acts once it can see',
    );
  });

  it('reports an orphan (ours by name, unknown to the state) and terminates it only with --reap', async () => {
    const r = await boot();
    const orphan = await r.api.createPod({
      name: 'runpod-llm-orphan01',
      image: 'vllm/vllm-openai:v0.11.0',
      gpu: { id: 'NVIDIA RTX A5000', count: 1 },
      ports: ['8000/http'],
    });
    await r.api.createPod({
      name: 'someone-elses-pod',
      image: 'x:1',
      gpu: { id: 'NVIDIA RTX A5000', count: 1 },
    });
    let report = await r.passAt(3);
    assert.deepEqual(report.orphans, [{ podId: orphan.id, name: 'runpod-llm-orphan01' }]);
    assert.ok(r.emulator.pods.get(orphan.id), 'reported, not touched');
    report = await r.passAt(4, { reap: true });
    assert.ok(types(report).includes('terminate:orphan'));
    assert.equal(r.emulator.pods.get(orphan.id), undefined);
    assert.equal(r.emulator.pods.list().length, 2, 'our pod and the foreign one remain');
    assert.ok(listAudit(r.state).some((e) => e.action === 'orphan' && e.podId === orphan.id));
  });

  it("leaves a running doctor's probe pod alone, and reaps one that outlived any doctor", async () => {
    const r = await boot();
    const probe = await r.api.createPod({
      name: `${PROBE_NAME_PREFIX}0123456789ab`,
      image: 'certbot/certbot:v2.11.0',
      cpu: { id: 'cpu3c', vcpuCount: 2 },
      cloud: 'SECURE',
      env: { [INSTALL_ENV]: installId(r.home) },
    });
    let report = await r.passAt(3, { reap: true });
    assert.deepEqual(report.orphans, [], 'a doctor created it minutes ago: not an orphan');
    assert.ok(r.emulator.pods.get(probe.id), 'not touched');
    report = await r.passAt(20, { reap: true });
    assert.deepEqual(
      report.orphans.map((o) => o.podId),
      [probe.id],
    );
    assert.equal(r.emulator.pods.get(probe.id), undefined, 'older than any doctor run: reaped');
  });

  it('terminates, without --reap, a second pod of this install under a name the state already has (a retried create RunPod fulfilled twice)', async () => {
    const r = await boot();
    const twin = await r.api.createPod({
      name: started.pod.name,
      image: 'vllm/vllm-openai:v0.11.0',
      gpu: { id: 'NVIDIA RTX A5000', count: 1 },
      ports: ['8000/http'],
      env: { [INSTALL_ENV]: installId(r.home) },
    });
    const report = await r.passAt(3);
    assert.deepEqual(types(report), ['terminate:stray_create']);
    assert.equal(r.emulator.pods.get(twin.id), undefined);
    assert.ok(r.emulator.pods.get(started.pod.podId), 'the recorded pod is untouched');
    assert.deepEqual(report.orphans, []);
  });

  it("tells its own lost pods from another install's: --reap ends the first (tagged or untagged), never the second", async () => {
    const r = await boot();
    const pod = (name: string, env?: Record<string, string>) =>
      r.api.createPod({
        name,
        image: 'vllm/vllm-openai:v0.11.0',
        gpu: { id: 'NVIDIA RTX A5000', count: 1 },
        ports: ['8000/http'],
        ...(env === undefined ? {} : { env }),
      });
    // The pod `up` created carries this state directory's install id.
    assert.equal(r.emulator.pods.get(started.pod.podId)?.env[INSTALL_ENV], installId(r.home));
    const mine = await pod('runpod-llm-lostmine', { [INSTALL_ENV]: installId(r.home) });
    const untagged = await pod('runpod-llm-oldvers1');
    const laptop = await pod('runpod-llm-laptop01', { [INSTALL_ENV]: 'i-0123456789ab' });
    const report = await r.passAt(3, { reap: true });
    const terminated = report.actions.flatMap((a) => (a.action.type === 'terminate' ? [a.action.podId] : []));
    assert.deepEqual(terminated.sort(), [mine.id, untagged.id].sort());
    assert.ok(r.emulator.pods.get(laptop.id), "another install's pod is never reaped");
    assert.deepEqual(
      report.orphans.find((o) => o.podId === laptop.id),
      { podId: laptop.id, name: 'runpod-llm-laptop01', otherInstall: true },
    );
    assert.ok(
      listAudit(r.state).some(
        (e) => e.action === 'orphan' && e.reason === 'other_install' && e.podId === laptop.id,
      ),
    );
  });

  it('retries a terminate RunPod did not confirm, and down ends everything', async () => {
    const r = await boot();
    const dead = createRunPodClient({ baseUrl: 'http://127.0.0.1:9', apiKey: r.emulator.apiKey, retries: 0 });
    const result = await down({ ...r.deps, api: dead }, { stop: false });
    assert.equal(result.pods[0]?.outcome, 'failed');
    assert.equal(r.emulator.pods.list().length, 1, 'still on RunPod');
    assert.equal(getPod(r.state, started.pod.podId)?.desired, 'terminated', 'the intent is kept');
    const report = await r.passAt(5);
    assert.deepEqual(types(report), ['terminate:retry']);
    assert.equal(r.emulator.pods.list().length, 0);
    assert.equal(getPod(r.state, started.pod.podId)?.endReason, 'down', 'the first reason stays');
  });
});
