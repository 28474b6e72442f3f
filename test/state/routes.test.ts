import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clearRoutes,
  deleteRoutesForPod,
  listReadyRoutes,
  listRoutes,
  routesVersion,
  setRouteReady,
  upsertRoute,
} from '../../src/state/routes.js';
import { tempState } from './helpers.js';

const route = (id: string, extra: { ready?: boolean; weight?: number } = {}) => ({
  routeId: id,
  podId: `pod-${id}`,
  baseUrl: `https://pod-${id}-8000.proxy.runpod.net/v1`,
  apiKey: `key-${id}`,
  model: 'qwen',
  ...extra,
});

describe('routes', () => {
  it('lists only ready routes with a weight, with their key and update time', () => {
    const { state, clock, done } = tempState();
    upsertRoute(state, route('a', { ready: true }));
    upsertRoute(state, route('b'));
    upsertRoute(state, route('c', { ready: true, weight: 0 }));
    const ready = listReadyRoutes(state);
    assert.deepEqual(ready, [{ ...route('a'), ready: true, weight: 1, updatedAt: clock.now() }]);
    assert.equal(listRoutes(state).length, 3);
    done();
  });

  it('bumps the version on every change and only then', () => {
    const { state, clock, done } = tempState();
    const v0 = routesVersion(state);
    upsertRoute(state, route('a'));
    const v1 = routesVersion(state);
    assert.ok(v1 > v0);
    assert.equal(routesVersion(state), v1, 'reading does not bump');
    clock.advance(1000);
    setRouteReady(state, 'a', true);
    const v2 = routesVersion(state);
    assert.ok(v2 > v1);
    assert.equal(listReadyRoutes(state)[0]?.updatedAt, clock.now());
    setRouteReady(state, 'a', true);
    assert.equal(routesVersion(state), v2, 'no-op update does not bump');
    upsertRoute(state, route('b', { ready: true }));
    deleteRoutesForPod(state, 'pod-a');
    assert.deepEqual(
      listReadyRoutes(state).map((r) => r.routeId),
      ['b'],
    );
    const v3 = routesVersion(state);
    assert.ok(v3 > v2);
    clearRoutes(state);
    assert.ok(routesVersion(state) > v3);
    assert.deepEqual(listRoutes(state), []);
    done();
  });

  it('upsert replaces a route in place', () => {
    const { state, done } = tempState();
    upsertRoute(state, route('a', { ready: true }));
    upsertRoute(state, { ...route('a'), apiKey: 'rotated', ready: true });
    assert.equal(listRoutes(state).length, 1);
    assert.equal(listReadyRoutes(state)[0]?.apiKey, 'rotated');
    done();
  });

  it('rejects a base URL not ending with /v1 and a bad weight', () => {
    const { state, done } = tempState();
    assert.throws(
      () => upsertRoute(state, { ...route('a'), baseUrl: 'https://x.proxy.runpod.net' }),
      TypeError,
    );
    assert.throws(() => upsertRoute(state, { ...route('a'), weight: -1 }), TypeError);
    assert.throws(() => upsertRoute(state, { ...route('a'), weight: 0.5 }), TypeError);
    assert.deepEqual(listRoutes(state), []);
    done();
  });
});
