import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { Balancer } from '../../src/gateway/upstream/balancer.js';
import type { Route, RouteSource } from '../../src/gateway/upstream/route-source.js';
import { ManualClock } from '../../src/shared/clock.js';
import { chatBody, MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

function routesOf(routes: Route[]): RouteSource {
  return { all: () => routes };
}
const r = (id: string, model = MODEL): Route => ({
  id,
  baseUrl: `http://127.0.0.1:9/${id}/v1`,
  apiKey: 'k',
  model,
});

describe('Balancer', () => {
  it('picks the route with the fewest requests in flight, ties at random', () => {
    const balancer = new Balancer(routesOf([r('a'), r('b'), r('c')]), {
      ejectAfter: 3,
      cooldownMs: 1000,
      clock: new ManualClock(),
      random: () => 0.99,
    });
    balancer.begin('a');
    balancer.begin('c');
    assert.equal(balancer.pick(MODEL)?.id, 'b');
    balancer.begin('b');
    assert.equal(balancer.pick(MODEL)?.id, 'c', 'a three-way tie; random 0.99 takes the last');
    balancer.end('a', true);
    assert.equal(balancer.pick(MODEL)?.id, 'a');
  });

  it('prefers routes serving the requested model and honours exclusions', () => {
    const balancer = new Balancer(routesOf([r('a', 'small'), r('b', 'big')]), {
      ejectAfter: 3,
      cooldownMs: 1000,
      clock: new ManualClock(),
    });
    assert.equal(balancer.pick('big')?.id, 'b');
    assert.equal(balancer.pick('big', new Set(['b']))?.id, 'a');
    assert.equal(balancer.pick(undefined, new Set(['a', 'b'])), undefined);
  });

  it('ejects a route after consecutive failures, for the cooldown, and restores it on success', () => {
    const clock = new ManualClock(0);
    const balancer = new Balancer(routesOf([r('a'), r('b')]), {
      ejectAfter: 3,
      cooldownMs: 30_000,
      clock,
      random: () => 0,
    });
    for (let i = 0; i < 2; i++) balancer.observe('a', false);
    assert.equal(balancer.pick(MODEL)?.id, 'a', 'two failures: still in');
    balancer.observe('a', false);
    assert.equal(balancer.pick(MODEL)?.id, 'b');
    assert.deepEqual(
      balancer.snapshot().map((s) => s.ejected),
      [true, false],
    );
    clock.advance(30_000);
    assert.equal(balancer.pick(MODEL)?.id, 'a', 'back on trial after the cooldown');
    balancer.observe('a', false);
    assert.equal(balancer.pick(MODEL)?.id, 'b', 'a failed trial ejects again at once');
    balancer.observe('a', true);
    assert.equal(balancer.pick(MODEL)?.id, 'a');
  });

  it('honours weight: idle routes in proportion to it, busy ones by requests in flight per unit of weight', () => {
    let ticket = 0;
    const heavy = { ...r('a'), weight: 3 };
    const balancer = new Balancer(routesOf([heavy, r('b')]), {
      ejectAfter: 3,
      cooldownMs: 1000,
      clock: new ManualClock(),
      random: () => ticket,
    });
    const idle = (t: number) => {
      ticket = t;
      return balancer.pick(MODEL)?.id;
    };
    assert.deepEqual(
      [0, 0.25, 0.5, 0.74, 0.76, 0.99].map(idle),
      ['a', 'a', 'a', 'a', 'b', 'b'],
      'a tie at zero load: weight 3 takes 3/4 of the draws',
    );
    balancer.begin('a');
    balancer.begin('a');
    assert.equal(idle(0), 'b', '2 in flight on weight 3 is more than 0 on weight 1');
    balancer.begin('b');
    assert.equal(idle(0.99), 'a', '2/3 per unit of weight is less than 1/1');
    balancer.begin('a');
    assert.deepEqual(
      [0, 0.74, 0.76].map(idle),
      ['a', 'a', 'b'],
      '3/3 ties with 1/1: drawn in proportion to weight again',
    );
  });

  it('drops the health entries of routes the source no longer lists (one still serving goes at the next change)', () => {
    const balancer = new Balancer(routesOf([r('a'), r('b'), r('c')]), {
      ejectAfter: 1,
      cooldownMs: 1000,
      clock: new ManualClock(),
    });
    balancer.observe('a', false);
    balancer.observe('b', true);
    balancer.begin('c');
    assert.deepEqual(balancer.tracked().sort(), ['a', 'b', 'c']);
    balancer.retain([r('b')]);
    assert.deepEqual(balancer.tracked().sort(), ['b', 'c'], 'c still has a request in flight');
    balancer.end('c', true);
    balancer.retain([r('b'), r('d')]);
    assert.deepEqual(balancer.tracked(), ['b']);
  });

  it('checks its options', () => {
    assert.throws(
      () => new Balancer(routesOf([]), { ejectAfter: 0, cooldownMs: 1, clock: new ManualClock() }),
      TypeError,
    );
  });
});

describe('gateway over two pods', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });
  async function twoPods(): Promise<{ gw: TestGateway; pods: VllmStandin[] }> {
    const pods = [
      await startVllmStandin({ model: MODEL, apiKey: POD_KEY }),
      await startVllmStandin({ model: MODEL, apiKey: POD_KEY }),
    ];
    const routes = pods.map((p, i) => ({
      id: `pod${i}`,
      baseUrl: `${p.url}/v1`,
      apiKey: POD_KEY,
      model: MODEL,
    }));
    const gw = await startTestGateway({
      pod: false,
      routes: routesOf(routes),
      config: { rate_limit_requests: 10_000 },
    });
    cleanup.push(
      () => gw.close(),
      () => pods[0]!.close(),
      () => pods[1]!.close(),
    );
    return { gw, pods };
  }
  const chats = (pod: VllmStandin) => pod.requests.filter((q) => q.path === '/v1/chat/completions').length;

  it('a pod killed mid-run causes no client error; it is ejected after 3 failures', async () => {
    const { gw, pods } = await twoPods();
    for (let i = 0; i < 6; i++)
      assert.equal(
        (await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody(`warm ${i}`) })).status,
        200,
      );
    await pods[0]!.close();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody(`after ${i}`) });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual(statuses, Array(20).fill(200));
    const state = gw.balancer.snapshot().find((s) => s.id === 'pod0');
    assert.equal(state?.ejected, true);
    const retried = (await (await gw.api('/metrics')).text()).match(
      /gateway_upstream_errors_total\{kind="retried"\} (\d+)/,
    );
    assert.ok(
      Number(retried?.[1]) >= 1 && Number(retried?.[1]) <= 3,
      `retried ${retried?.[1]}: no more attempts once ejected`,
    );
    assert.ok(chats(pods[1]!) >= 20);
  });

  it('a pod answering 5xx is skipped for the other before anything reaches the client', async () => {
    const { gw, pods } = await twoPods();
    pods[0]!.setFault({
      kind: 'status',
      status: 503,
      body: '{"object":"error","message":"overloaded","type":"ServiceUnavailable","param":null,"code":503}',
    });
    for (let i = 0; i < 10; i++)
      assert.equal(
        (await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody(`x${i}`) })).status,
        200,
      );
  });

  it('sends new requests to the less busy pod', async () => {
    const { gw, pods } = await twoPods();
    pods[0]!.setFault({ kind: 'delay', ms: 400 });
    pods[1]!.setFault({ kind: 'delay', ms: 400 });
    const inflight = [
      gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('one') }),
      gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('two') }),
    ];
    await Promise.all(inflight);
    assert.equal(chats(pods[0]!), 1);
    assert.equal(chats(pods[1]!), 1, 'two concurrent requests land on two pods');
  });
});
