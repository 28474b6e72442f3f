import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { up, type UpResult } from '../../src/lifecycle/up.js';
import { decideWake, type WakeInput } from '../../src/watchdog/wake-decision.js';
import { runWatchLoop } from '../../src/watchdog/loop.js';
import type { WatchReport } from '../../src/watchdog/report.js';
import { listAudit } from '../../src/state/audit.js';
import { getPod, listActivePods } from '../../src/state/pods.js';
import { listReadyRoutes } from '../../src/state/routes.js';
import { activeRun, getRun } from '../../src/state/runs.js';
import { addSpend } from '../../src/state/spend.js';
import { pendingWake, requestWake } from '../../src/state/wake-requests.js';
import { type LifecycleRig, MIN, startLifecycleRig, T0 } from '../lifecycle/rig.js';

const at = (minute: number): number => T0 + minute * MIN;
const types = (r: WatchReport): string[] =>
  r.actions.map((a) => {
    const act = a.action;
    if (act.type === 'wake') return `wake:${act.how}`;
    return `${act.type}${'reason' in act ? `:${act.reason}` : ''}`;
  });
const audits = (rig: LifecycleRig, action: string): number =>
  listAudit(rig.state).filter((e) => e.action === action).length;

describe('decideWake (pure)', () => {
  const base: WakeInput = {
    wake: { requestedAt: at(20), requests: 3 },
    run: {
      runId: 'r1',
      startedAt: T0,
      runtimeLimitMs: 60 * MIN,
      budgetUsd: null,
      endedAt: null,
      endReason: null,
    },
    pods: [{ podId: 'p1', desired: 'stopped' }],
    readyRoutes: 0,
    spend: { run: 0.05, day: 0.05, month: 0.05 },
    podPricePerHr: 0.6,
    now: at(20),
    config: { checkIntervalMs: MIN, dayBudgetUsd: null, monthBudgetUsd: null, replicas: 1 },
  };
  const cases: Array<[string, Partial<WakeInput>, ReturnType<typeof decideWake>]> = [
    ['no request → nothing', { wake: null }, { type: 'none' }],
    [
      'a stopped group → start all its pods',
      {
        pods: [
          { podId: 'p1', desired: 'stopped' },
          { podId: 'p2', desired: 'stopped' },
        ],
      },
      { type: 'start', runId: 'r1', podIds: ['p1', 'p2'] },
    ],
    ['a pod is ready → dismiss', { readyRoutes: 1 }, { type: 'dismiss', why: 'already_up' }],
    [
      'a pod is starting → dismiss (one wake at a time)',
      { pods: [{ podId: 'p1', desired: 'running' }] },
      { type: 'dismiss', why: 'starting' },
    ],
    [
      'an active run without pods → create the replicas',
      { pods: [], config: { ...base.config, replicas: 2 } },
      { type: 'create', runId: 'r1', count: 2, remainingRuntimeMs: 40 * MIN, reopen: false },
    ],
    [
      'a run terminated for idleness → reopen it with the runtime left, no 5-minute grace',
      { pods: [], now: at(57), run: { ...base.run!, endedAt: at(12), endReason: 'idle' } },
      { type: 'create', runId: 'r1', count: 1, remainingRuntimeMs: 3 * MIN, reopen: true },
    ],
    [
      'no runtime limit → pods without one',
      { pods: [], run: { ...base.run!, runtimeLimitMs: null, endedAt: at(12), endReason: 'idle' } },
      { type: 'create', runId: 'r1', count: 1, remainingRuntimeMs: null, reopen: true },
    ],
    [
      'past the runtime limit → refuse',
      { now: at(60) },
      {
        type: 'refuse',
        reason: 'runtime_limit',
        detail: "the run's runtime limit passed at 2026-11-25T10:00:00.000Z",
      },
    ],
    [
      'a run that ended for its limit → refuse with that reason',
      { run: { ...base.run!, endedAt: at(60), endReason: 'runtime_limit' } },
      {
        type: 'refuse',
        reason: 'runtime_limit',
        detail: 'the last run ended (runtime_limit); start a new one with `runpod-llm up`',
      },
    ],
    [
      'a run ended by down → refuse',
      { run: { ...base.run!, endedAt: at(30), endReason: 'down' } },
      {
        type: 'refuse',
        reason: 'no_run',
        detail: 'the last run ended (down); start a new one with `runpod-llm up`',
      },
    ],
    [
      'no run at all → refuse',
      { run: null },
      { type: 'refuse', reason: 'no_run', detail: 'no run to wake: start one with `runpod-llm up`' },
    ],
  ];
  for (const [name, patch, expected] of cases) {
    it(name, () => assert.deepEqual(decideWake({ ...base, ...patch }), expected));
  }

  it('refuses when a budget is reached or the woken group would pass it before the next check', () => {
    // $0.6/h = $0.01 a minute per pod.
    assert.equal(decideWake({ ...base, run: { ...base.run!, budgetUsd: 0.0605 } }).type, 'start');
    assert.equal(
      (decideWake({ ...base, run: { ...base.run!, budgetUsd: 0.0595 } }) as { reason?: string }).reason,
      'budget_run',
    );
    const two = {
      ...base,
      pods: [
        { podId: 'p1', desired: 'stopped' as const },
        { podId: 'p2', desired: 'stopped' as const },
      ],
    };
    assert.equal(
      (decideWake({ ...two, run: { ...base.run!, budgetUsd: 0.0605 } }) as { reason?: string }).reason,
      'budget_run',
      'the sum of the group counts',
    );
    assert.equal(
      (decideWake({ ...base, config: { ...base.config, dayBudgetUsd: 0.05 } }) as { reason?: string }).reason,
      'budget_day',
    );
    assert.equal(
      (decideWake({ ...base, config: { ...base.config, monthBudgetUsd: 0.055 } }) as { reason?: string })
        .reason,
      'budget_month',
    );
  });
});

describe('wake on request (watchdog + emulator, simulated time)', () => {
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

  it('idle stop → a burst of requests → one wake: the pod starts, is routed once ready, and idles from then on', async () => {
    const r = await boot({ manager: { idle_action: 'stop', idle_limit: '10m' } });
    const podId = started.pod.podId;
    assert.deepEqual(types(await r.passAt(12)), ['stop:idle']);
    assert.equal(listReadyRoutes(r.state).length, 0);

    // Five requests from the gateway(s) while nothing is ready: one pending row.
    for (let i = 0; i < 5; i++) {
      r.clock.set(at(19) + i * 1000);
      requestWake(r.state);
    }
    assert.equal(pendingWake(r.state)?.requests, 5);
    const woke = await r.passAt(20, { wakeOnRequest: true });
    assert.deepEqual(types(woke), ['wake:start']);
    assert.equal(woke.pending, 1, 'the loop polls faster while the pod boots');
    assert.equal(pendingWake(r.state), null, 'the request is cleared');
    assert.equal(r.emulator.pods.get(podId)?.status, 'STARTING');
    const row = getPod(r.state, podId);
    assert.equal(row?.desired, 'running');
    assert.equal(row?.readyAt, null, 'not ready (nor idle) until readiness passes again');
    assert.equal(listReadyRoutes(r.state).length, 0);

    // More requests while it boots: dismissed, no second start.
    r.clock.set(at(20.5));
    requestWake(r.state);
    assert.deepEqual(types(await r.passAt(20.5)), []);
    assert.equal(pendingWake(r.state), null);

    // Started at 20:00, RUNNING at 20:30, model loaded at 21:00: routed at the pass of 21.
    assert.deepEqual(types(await r.passAt(21)), ['route_ready']);
    assert.equal(listReadyRoutes(r.state)[0]?.podId, podId, 'the same pod, routed again');
    assert.equal(audits(r, 'wake'), 1, 'one wake for the whole burst');
    assert.equal(listAudit(r.state).filter((e) => e.action === 'start' && e.reason === 'wake').length, 1);
    assert.equal(r.emulator.pods.created().length, 1, 'started again, not recreated');

    // Idle counts from the new ready time: stopped again 10 minutes after 21.
    assert.deepEqual(types(await r.passAt(30)), []);
    assert.deepEqual(types(await r.passAt(31)), ['stop:idle']);
  });

  it('idle terminate → the run stays wakeable; a request reopens it with the runtime left', async () => {
    const r = await boot({ manager: { idle_action: 'terminate', idle_limit: '10m' } });
    const idle = await r.passAt(12, { wakeOnRequest: true });
    assert.deepEqual(types(idle), ['terminate:idle', 'end_run:idle']);
    assert.equal(idle.runActive, false);
    assert.equal(idle.wakeable, true, 'the loop keeps running for it');
    assert.equal((await r.passAt(12)).wakeable, false, 'only when the gateways wake pods');

    r.clock.set(at(20));
    requestWake(r.state);
    assert.deepEqual(types(await r.passAt(20, { wakeOnRequest: true })), ['wake:create']);
    assert.equal(activeRun(r.state)?.runId, started.run.runId, 'the same run: its limit and budget go on');
    const [fresh] = listActivePods(r.state);
    assert.ok(fresh && fresh.podId !== started.pod.podId);
    assert.equal(fresh.runtimeLimitMs, 40 * MIN, 'the run has 40 of its 60 minutes left');
    assert.notEqual(fresh.apiKey, started.pod.apiKey);
    await r.passAt(21);
    assert.deepEqual(types(await r.passAt(22)), ['route_ready']);
    assert.equal(listReadyRoutes(r.state)[0]?.podId, fresh.podId);

    // Idle again (from 22), and past the limit a request is refused.
    assert.deepEqual(types(await r.passAt(32, { wakeOnRequest: true })), ['terminate:idle', 'end_run:idle']);
    r.clock.set(at(61));
    requestWake(r.state);
    const refused = await r.passAt(61, { wakeOnRequest: true });
    assert.deepEqual(types(refused), ['wake_refused:runtime_limit']);
    assert.equal(refused.wakeable, false, 'the loop may stop');
    assert.equal(pendingWake(r.state), null);
    assert.equal(r.emulator.pods.list().length, 0, 'nothing created');
    assert.equal(listAudit(r.state).find((e) => e.action === 'wake_refused')?.reason, 'runtime_limit');
  });

  it('never wakes a stopped run past its runtime limit: the pass ends it and refuses the request', async () => {
    const r = await boot({ manager: { idle_action: 'stop', idle_limit: '10m', runtime_limit: '15m' } });
    assert.deepEqual(types(await r.passAt(12)), ['stop:idle']);
    r.clock.set(at(16));
    requestWake(r.state);
    assert.deepEqual(types(await r.passAt(16)), [
      'terminate:runtime_limit',
      'end_run:runtime_limit',
      'wake_refused:runtime_limit',
    ]);
    assert.equal(r.emulator.pods.list().length, 0);
    assert.equal(getRun(r.state, started.run.runId)?.endReason, 'runtime_limit');
    assert.equal(pendingWake(r.state), null);
  });

  it('never wakes past the daily budget: spend elsewhere today leaves too little for one more check', async () => {
    const r = await boot({ manager: { idle_action: 'stop', idle_limit: '10m', daily_budget_usd: 0.1 } });
    assert.deepEqual(types(await r.passAt(12)), ['stop:idle']);
    // Another run today (say on another machine sharing the state) spent $0.045 (with our $0.054, $0.099 today).
    addSpend(r.state, { podId: 'elsewhere', at: at(15), usd: 0.045, runId: null });
    r.clock.set(at(20));
    requestWake(r.state);
    assert.deepEqual(types(await r.passAt(20)), ['wake_refused:budget_day']);
    assert.equal(r.emulator.pods.get(started.pod.podId)?.status, 'EXITED', 'left stopped');
    assert.equal(getPod(r.state, started.pod.podId)?.desired, 'stopped');
    assert.ok(activeRun(r.state), 'the run stays parked: tomorrow a request may wake it');
  });

  it('the loop notices a wake request between passes within a poll, not a whole interval', async () => {
    const r = await boot({ manager: { idle_action: 'stop', idle_limit: '10m' } });
    r.clock.set(at(12));
    assert.deepEqual(types(await r.passAt(12)), ['stop:idle']);
    // The stop itself waited for the gateways to drop the route (ROUTE_DRAIN_MS).
    const loopStart = r.clock.now();
    const abort = new AbortController();
    const passes: number[] = [];
    let sleeps = 0;
    const deps = {
      ...r.deps,
      signal: abort.signal,
      sleep: async (ms: number): Promise<void> => {
        r.clock.advance(ms);
        // Three seconds into a 60-second wait, a gateway asks for a pod.
        if (++sleeps === 3) requestWake(r.state);
      },
    };
    const why = await runWatchLoop(deps, {
      home: r.home,
      intervalMs: 60_000,
      wakePollMs: 1_000,
      reap: false,
      fallback: r.settings,
      onReport: (report) => {
        passes.push(report.at - loopStart);
        if (report.actions.some((a) => a.action.type === 'wake')) abort.abort();
      },
    });
    assert.equal(why, 'stopped');
    assert.deepEqual(passes, [0, 3_000], 'the second pass ran 3 s in, right after the request');
    assert.equal(r.emulator.pods.get(started.pod.podId)?.status, 'STARTING');
  });
});
