import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stateRouteSource, type StateRouteSource } from '../../src/gateway/upstream/state-route-source.js';
import { up, type UpResult } from '../../src/lifecycle/up.js';
import { silentLogger } from '../../src/shared/logger.js';
import { listReadyRoutes } from '../../src/state/routes.js';
import { chatBody, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type LifecycleRig, startLifecycleRig } from './rig.js';

/**
 * "2 pods, one killed mid-run": the manager (simulated time, emulator) keeps two
 * guarded pods; a real gateway reads their routes from the same state. A pod dies: clients see
 * no error (the gateway retries on the other pod before any byte), and the watchdog replaces it.
 */
describe('two replicas behind the gateway, one killed', () => {
  let rig: LifecycleRig;
  let routes: StateRouteSource;
  let gw: TestGateway;
  let started: UpResult;

  before(async () => {
    rig = await startLifecycleRig({ manager: { replicas: 2, idle_limit: 'off' } });
    started = await up(rig.deps, rig.settings);
    routes = stateRouteSource({ home: rig.home, logger: silentLogger(), pollMs: 60_000 });
    gw = await startTestGateway({
      pod: false,
      routes,
      config: { rate_limit_requests: 10_000, cache_mode: 'off' },
    });
    routes.refresh();
  });
  after(async () => {
    await gw.close();
    await rig.close();
  });

  const chat = async (text: string): Promise<number> => {
    const res = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: chatBody(text, { model: rig.settings.servedModelName }),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const served = (podId: string): number =>
    rig.emulator.pods.standin(podId)?.requests.filter((r) => r.path === '/v1/chat/completions').length ?? 0;

  it('serves through both, loses no non-streaming request when one dies, and routes the replacement', async () => {
    const [a, b] = started.pods;
    assert.ok(a && b);
    for (let i = 0; i < 10; i++) assert.equal(await chat(`warm ${i}`), 200);
    assert.ok(served(a.podId) + served(b.podId) === 10);

    rig.emulator.pods.kill(a.podId, 'EXITED');
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push(await chat(`after ${i}`));
    assert.deepEqual(statuses, Array(10).fill(200), 'no client error');

    await rig.passAt(5);
    routes.refresh();
    assert.deepEqual(
      listReadyRoutes(rig.state).map((r) => r.podId),
      [b.podId],
      'the dead pod is no longer routed',
    );
    await rig.passAt(6);
    await rig.passAt(7);
    routes.refresh();
    const ready = listReadyRoutes(rig.state).map((r) => r.podId ?? '');
    assert.equal(ready.length, 2);
    const fresh = ready.find((id) => id !== b.podId) ?? '';
    assert.notEqual(fresh, a.podId);
    for (let i = 0; i < 20 && served(fresh) === 0; i++) assert.equal(await chat(`again ${i}`), 200);
    assert.ok(served(fresh) > 0, 'the replacement takes traffic');
  });
});
