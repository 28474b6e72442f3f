import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { createUsageRecorder } from '../../src/gateway/usage-recorder.js';
import { stateRouteSource, type StateRouteSource } from '../../src/gateway/upstream/state-route-source.js';
import { openState, type StateDb } from '../../src/state/db.js';
import { clearRoutes, upsertRoute } from '../../src/state/routes.js';
import { readUsage } from '../../src/state/usage.js';
import { silentLogger } from '../../src/shared/logger.js';
import { chatBody, MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('gateway routes from the manager state', () => {
  let home: string;
  let pods: VllmStandin[];
  let routes: StateRouteSource;
  let gw: TestGateway;
  let manager: StateDb;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'gw-state-'));
    pods = [
      await startVllmStandin({ model: MODEL, apiKey: POD_KEY }),
      await startVllmStandin({ model: MODEL, apiKey: 'second-pod-key-0000000' }),
    ];
    routes = stateRouteSource({ home, logger: silentLogger(), pollMs: 60_000 });
    gw = await startTestGateway({ pod: false, routes });
  });
  after(async () => {
    await gw.close();
    manager?.close();
    for (const pod of pods) await pod.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('answers 503 no_upstream with the fix while the manager has no state', async () => {
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() });
    assert.equal(res.status, 503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'no_upstream');
    assert.match(body.error.message, /runpod-llm up/);
  });

  it("forwards to ready routes with each pod's own key once the manager writes them", async () => {
    manager = openState({ home });
    upsertRoute(manager, {
      routeId: 'pod-a',
      podId: 'pod-a',
      baseUrl: `${pods[0]!.url}/v1`,
      apiKey: POD_KEY,
      model: MODEL,
      ready: true,
    });
    upsertRoute(manager, {
      routeId: 'pod-b',
      podId: 'pod-b',
      baseUrl: `${pods[1]!.url}/v1`,
      apiKey: 'second-pod-key-0000000',
      model: MODEL,
      ready: false,
    });
    routes.refresh();
    assert.equal((await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() })).status, 200);
    assert.equal(pods[1]!.requests.length, 0, 'a route that is not ready gets nothing');
    upsertRoute(manager, {
      routeId: 'pod-b',
      podId: 'pod-b',
      baseUrl: `${pods[1]!.url}/v1`,
      apiKey: 'second-pod-key-0000000',
      model: MODEL,
      ready: true,
    });
    routes.refresh();
    for (let i = 0; i < 20; i++)
      assert.equal((await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() })).status, 200);
    // Sequential requests tie on load (none in flight): the balancer breaks ties at random.
    assert.ok(
      pods[1]!.requests.length >= 1 && pods[1]!.requests.length <= 19,
      `pod-b got ${pods[1]!.requests.length} of 20`,
    );
    assert.equal(pods[1]!.requests[0]?.headers.authorization, 'Bearer second-pod-key-0000000');
  });

  it('drops the pools and health entries of routes that are gone (a recreated pod is a new route)', async () => {
    const origin = (pod: VllmStandin) => new URL(pod.url).origin;
    assert.deepEqual(gw.pools.origins().sort(), [origin(pods[0]!), origin(pods[1]!)].sort());
    assert.deepEqual(gw.balancer.tracked().sort(), ['pod-a', 'pod-b']);
    clearRoutes(manager);
    // pod-b recreated: a new route id on the second stand-in; pod-a gone.
    upsertRoute(manager, {
      routeId: 'pod-c',
      podId: 'pod-c',
      baseUrl: `${pods[1]!.url}/v1`,
      apiKey: 'second-pod-key-0000000',
      model: MODEL,
      ready: true,
    });
    routes.refresh();
    assert.equal((await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() })).status, 200);
    assert.deepEqual(gw.pools.origins(), [origin(pods[1]!)]);
    assert.deepEqual(gw.balancer.tracked(), ['pod-c']);
  });

  it('stops forwarding when the manager clears the routes', async () => {
    clearRoutes(manager);
    routes.refresh();
    assert.equal((await gw.api('/v1/models')).status, 503);
  });
});

describe('usage recorder', () => {
  it('batches forwarded requests into the state for the watchdog', async () => {
    const home = mkdtempSync(join(tmpdir(), 'gw-usage-'));
    const manager = openState({ home });
    const pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY });
    upsertRoute(manager, {
      routeId: 'pod-a',
      podId: 'pod-a',
      baseUrl: `${pod.url}/v1`,
      apiKey: POD_KEY,
      model: MODEL,
      ready: true,
    });
    const routes = stateRouteSource({ home, logger: silentLogger(), pollMs: 60_000 });
    const usage = createUsageRecorder({ db: () => routes.db(), logger: silentLogger(), flushMs: 60_000 });
    const { buildApp } = await import('../../src/gateway/app.js');
    const { defaultConfig } = await import('../../src/config/schema.js');
    const { app } = await buildApp({
      config: defaultConfig({ auth: 'none' }),
      logger: silentLogger(),
      routes,
      keys: [],
      usage,
      probe: false,
    });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/chat/completions',
          payload: chatBody('count me'),
        });
        assert.equal(res.statusCode, 200);
      }
      const refused = await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: { model: MODEL },
      });
      assert.equal(refused.statusCode, 400);
      assert.equal(readUsage(manager).total.requests, 0, 'nothing written before the flush');
      usage.flush();
      const snapshot = readUsage(manager);
      assert.equal(snapshot.total.requests, 3, 'only forwarded requests count as activity');
      assert.equal(snapshot.total.tokensOut, 24);
      assert.equal(snapshot.byRoute[0]?.scope, 'pod-a');
      assert.ok((snapshot.total.lastRequestAt ?? 0) > Date.now() - 10_000);
    } finally {
      await app.close();
      manager.close();
      await pod.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('pod view for the dashboard', () => {
  it('summarises the active run from the manager state, and is null without one', async () => {
    const { statePodInfo } = await import('../../src/gateway/pod-info.js');
    const { ManualClock } = await import('../../src/shared/clock.js');
    const { createRun } = await import('../../src/state/runs.js');
    const { insertPod } = await import('../../src/state/pods.js');
    const { addSpend } = await import('../../src/state/spend.js');
    const { recordUsageBatch } = await import('../../src/state/usage.js');
    const home = mkdtempSync(join(tmpdir(), 'gw-podinfo-'));
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
    const state = openState({ home, clock });
    try {
      const view = statePodInfo(() => state, clock);
      assert.equal(view(), null);
      const run = createRun(state, { runtimeLimitMs: 3_600_000, budgetUsd: 5, config: {} });
      insertPod(state, {
        podId: 'pod1',
        name: 'runpod-llm-abcd1234',
        runId: run.runId,
        gpuTypeId: 'NVIDIA L40S',
        gpuCount: 1,
        cloud: 'SECURE',
        costPerHr: 0.86,
        model: MODEL,
        status: 'RUNNING',
        createdAt: clock.now(),
        runtimeLimitMs: 3_600_000,
        idleLimitMs: 900_000,
        idleAction: 'stop',
        budgetUsd: 5,
        apiKey: 'k',
        readyAt: clock.now(),
      });
      addSpend(state, { podId: 'pod1', at: clock.now(), usd: 0.43 });
      clock.advance(30 * 60_000);
      recordUsageBatch(state, [
        { routeId: 'pod1', lastRequestAt: clock.now() - 7 * 60_000, requests: 1, tokensIn: 1, tokensOut: 1 },
      ]);
      assert.deepEqual(view(), {
        pod_id: 'pod1',
        status: 'RUNNING',
        model: MODEL,
        gpu: '1× NVIDIA L40S',
        replicas: 1,
        cost_per_hr: 0.86,
        cost_so_far_usd: 0.43,
        time_left_s: 1800,
        idle_min: 7,
      });
    } finally {
      state.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
