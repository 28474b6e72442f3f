import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { remainingRuntimeMs } from '../../src/lifecycle/remaining-runtime.js';
import { decide } from '../../src/watchdog/decide.js';
import {
  type Action,
  type DecideInput,
  type LivePod,
  type OurPod,
  type RunState,
  type WatchConfig,
} from '../../src/watchdog/decision.js';
import { observePod } from '../../src/watchdog/pod-observation.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 25, 9, 0, 0);
const at = (minutes: number): number => T0 + minutes * MIN;

const config = (over: Partial<WatchConfig> = {}): WatchConfig => ({
  checkIntervalMs: MIN,
  idleLimitMs: 15 * MIN,
  idleAction: 'stop',
  dayBudgetUsd: null,
  monthBudgetUsd: null,
  reap: false,
  replicas: 1,
  minRecreateRuntimeMs: 5 * MIN,
  ...over,
});
const run = (over: Partial<RunState> = {}): RunState => ({
  runId: 'r1',
  startedAt: T0,
  runtimeLimitMs: 60 * MIN,
  budgetUsd: null,
  endedAt: null,
  ...over,
});
const pod = (over: Partial<OurPod> = {}): OurPod => ({
  podId: 'p1',
  runId: 'r1',
  desired: 'running',
  createdAt: T0,
  readyAt: at(2),
  runtimeLimitMs: 60 * MIN,
  accruedUntil: null,
  endReason: null,
  guard: '2',
  ...over,
});
/** $0.60/h = $0.01 per minute. */
const live = (over: Partial<LivePod> = {}): LivePod => ({
  id: 'p1',
  name: 'runpod-llm-p1',
  status: 'RUNNING',
  costPerHr: 0.6,
  gpuCount: 1,
  startedAt: T0,
  ...over,
});

interface Scenario {
  minute: number;
  run?: RunState | null;
  pods?: OurPod[];
  live?: Record<string, LivePod | 'not_found'> | 'unreachable';
  lastRequestAt?: number | null;
  spend?: Partial<DecideInput['spend']>;
  config?: Partial<WatchConfig>;
  foreignPods?: LivePod[];
  otherInstallPods?: LivePod[];
  recreations?: number;
}

function input(s: Scenario): DecideInput {
  const pods = s.pods ?? [pod()];
  const liveMap =
    s.live === 'unreachable'
      ? 'unreachable'
      : new Map(
          Object.entries(s.live ?? Object.fromEntries(pods.map((p) => [p.podId, live({ id: p.podId })]))),
        );
  return {
    run: s.run === undefined ? run() : s.run,
    pods,
    live: liveMap,
    // Default: a request a minute ago (not idle); idle cases set it.
    usage: { lastRequestAt: s.lastRequestAt === undefined ? at(s.minute - 1) : s.lastRequestAt },
    spend: { run: 0, day: 0, month: 0, ...s.spend },
    now: at(s.minute),
    config: config(s.config),
    foreignPods: s.foreignPods ?? [],
    ...(s.otherInstallPods === undefined ? {} : { otherInstallPods: s.otherInstallPods }),
    ...(s.recreations === undefined ? {} : { recreations: s.recreations }),
  };
}

/** Everything except the cost bookkeeping, which has its own tests. */
const decisions = (s: Scenario): Action[] => decide(input(s)).filter((a) => a.type !== 'accrue');

const keep = (podId = 'p1'): Action => ({ type: 'keep', podId });
const terminate = (reason: string, podId = 'p1'): Action => ({ type: 'terminate', podId, reason }) as Action;
const endRun = (reason: string): Action => ({ type: 'end_run', runId: 'r1', reason }) as Action;
const recreate = (reason: string, remainingMin: number | null, podId = 'p1'): Action =>
  ({
    type: 'recreate',
    podId,
    remainingRuntimeMs: remainingMin === null ? null : remainingMin * MIN,
    reason,
  }) as Action;
// Accrual is pinned to "just booked" so budgets see only what each case sets.
const booked = (minute: number, over: Partial<OurPod> = {}): OurPod =>
  pod({ accruedUntil: at(minute), ...over });

const table: [name: string, scenario: Scenario, expected: Action[]][] = [
  // Runtime limit (60 min from the run's start).
  ['runtime: 1 ms before the limit → keep', { minute: 60 - 1 / MIN, lastRequestAt: at(59) }, [keep()]],
  [
    'runtime: at the limit → terminate and end the run',
    { minute: 60, lastRequestAt: at(59) },
    [terminate('runtime_limit'), endRun('runtime_limit')],
  ],
  [
    'runtime: no limit → keep at 10 h',
    {
      minute: 600,
      lastRequestAt: at(599),
      run: run({ runtimeLimitMs: null }),
      pods: [pod({ runtimeLimitMs: null })],
    },
    [keep()],
  ],
  [
    'runtime: parked (stopped) pods are terminated at the limit too',
    {
      minute: 60,
      pods: [pod({ desired: 'stopped' })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [terminate('runtime_limit'), endRun('runtime_limit')],
  ],

  // Idleness: last request at minute 3, ready at 2, limit 15 min.
  ['idle: 14:59 after the last request → keep', { lastRequestAt: at(3), minute: 18 - 1 / MIN }, [keep()]],
  [
    'idle: 15 min after the last request → stop',
    { lastRequestAt: at(3), minute: 18 },
    [{ type: 'stop', podId: 'p1', reason: 'idle' }],
  ],
  [
    'idle: terminate per config → terminate and end the run',
    { lastRequestAt: at(3), minute: 18, config: { idleAction: 'terminate' } },
    [terminate('idle'), endRun('idle')],
  ],
  [
    'idle: never a request → counts from ready time (2 + 15)',
    { minute: 17, lastRequestAt: null },
    [{ type: 'stop', podId: 'p1', reason: 'idle' }],
  ],
  ['idle: never a request, 1 ms before → keep', { minute: 17 - 1 / MIN, lastRequestAt: null }, [keep()]],
  [
    'idle: a request older than the ready time (earlier run) counts from ready',
    { minute: 16, lastRequestAt: at(-300) },
    [keep()],
  ],
  [
    'idle: … so it stops 15 min after ready',
    { minute: 17, lastRequestAt: at(-300) },
    [{ type: 'stop', podId: 'p1', reason: 'idle' }],
  ],
  [
    'idle: never ready (booting) is not idle',
    { minute: 30, lastRequestAt: null, pods: [pod({ readyAt: null })] },
    [keep()],
  ],
  ['idle: disabled → keep', { lastRequestAt: at(3), minute: 50, config: { idleLimitMs: null } }, [keep()]],
  [
    'idle: an already EXITED pod is only marked stopped',
    { lastRequestAt: at(3), minute: 18, live: { p1: live({ status: 'EXITED', costPerHr: 0 }) } },
    [{ type: 'mark_stopped', podId: 'p1', reason: 'idle' }],
  ],
  [
    'idle: a parked pod stays parked, not recreated',
    {
      lastRequestAt: at(3),
      minute: 40,
      pods: [pod({ desired: 'stopped' })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [keep()],
  ],
  [
    'idle: a parked pod found running is stopped again',
    { lastRequestAt: at(3), minute: 40, pods: [pod({ desired: 'stopped' })] },
    [{ type: 'stop', podId: 'p1', reason: 'idle' }],
  ],

  // Budgets. $0.01/min; accrual since creation counts; projection = one more minute.
  [
    'budget run: 0.24 spent + 0.01 projected = cap → keep',
    { minute: 24, lastRequestAt: at(23), run: run({ budgetUsd: 0.25 }) },
    [keep()],
  ],
  [
    'budget run: next minute would pass the cap → terminate',
    { minute: 25, lastRequestAt: at(24), run: run({ budgetUsd: 0.25 }) },
    [terminate('budget_run'), endRun('budget_run')],
  ],
  [
    'budget run: booked spend counts',
    { minute: 10, lastRequestAt: at(9), pods: [booked(10)], run: run({ budgetUsd: 1 }), spend: { run: 1 } },
    [terminate('budget_run'), endRun('budget_run')],
  ],
  [
    'budget day: under the cap → keep',
    {
      minute: 10,
      lastRequestAt: at(9),
      pods: [booked(9)],
      spend: { day: 3.97 },
      config: { dayBudgetUsd: 4 },
    },
    [keep()],
  ],
  [
    'budget day: over with accrual and projection → terminate',
    {
      minute: 10,
      lastRequestAt: at(9),
      pods: [booked(9)],
      spend: { day: 3.985 },
      config: { dayBudgetUsd: 4 },
    },
    [terminate('budget_day'), endRun('budget_day')],
  ],
  [
    'budget month → terminate',
    {
      minute: 10,
      lastRequestAt: at(9),
      pods: [booked(10)],
      spend: { day: 1, month: 49.995 },
      config: { dayBudgetUsd: 4, monthBudgetUsd: 50 },
    },
    [terminate('budget_month'), endRun('budget_month')],
  ],
  [
    'budget: the run cap is reported first',
    {
      minute: 10,
      lastRequestAt: at(9),
      pods: [booked(10)],
      run: run({ budgetUsd: 1 }),
      spend: { run: 2, day: 9 },
      config: { dayBudgetUsd: 4 },
    },
    [terminate('budget_run'), endRun('budget_run')],
  ],
  [
    'budget: used up while parked → terminate the parked pod',
    {
      minute: 30,
      pods: [booked(30, { desired: 'stopped' })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
      run: run({ budgetUsd: 1 }),
      spend: { run: 1 },
    },
    [terminate('budget_run'), endRun('budget_run')],
  ],

  // Death → recreate with the remaining runtime (at least 5 min).
  [
    'death: EXITED at 30 → recreate with 30 min',
    { minute: 30, live: { p1: live({ status: 'EXITED', costPerHr: 0 }) } },
    [recreate('died', 30)],
  ],
  [
    'death: ERROR → recreate',
    { minute: 30, live: { p1: live({ status: 'ERROR', costPerHr: 0 }) } },
    [recreate('error', 30)],
  ],
  [
    'death: TERMINATED → recreate',
    { minute: 30, live: { p1: live({ status: 'TERMINATED', costPerHr: 0 }) } },
    [recreate('died', 30)],
  ],
  ['death: not found → recreate', { minute: 30, live: { p1: 'not_found' } }, [recreate('died', 30)]],
  [
    'zero GPUs on one poll → kept (it may be a transient report)',
    { minute: 30, live: { p1: live({ gpuCount: 0, zeroGpuPolls: 1 }) } },
    [keep()],
  ],
  [
    'death: zero GPUs on two polls → recreate',
    { minute: 30, live: { p1: live({ gpuCount: 0, zeroGpuPolls: 2 }) } },
    [recreate('zero_gpus', 30)],
  ],
  // RunPod restarts a crashed container in place; the pod stays RUNNING.
  [
    'crash: a routed pod RunPod restarted (uptime went backwards) → recreate',
    { minute: 30, live: { p1: live({ restarted: true }) } },
    [recreate('restarted', 30)],
  ],
  [
    "crash: a restart before the pod was ever ready is readiness's business, not the watchdog's",
    { minute: 5, pods: [pod({ readyAt: null })], live: { p1: live({ restarted: true }) } },
    [keep()],
  ],
  ['health: 2 failed passes (< 3) → kept', { minute: 30, live: { p1: live({ healthFails: 2 }) } }, [keep()]],
  [
    'health: 3 consecutive failed passes → recreate',
    { minute: 30, live: { p1: live({ healthFails: 3 }) } },
    [recreate('unhealthy', 30)],
  ],
  [
    'health: the pass count is a setting',
    { minute: 30, config: { healthFailPasses: 1 }, live: { p1: live({ healthFails: 1 }) } },
    [recreate('unhealthy', 30)],
  ],
  [
    'bound: the 3rd recreation of a run is still made',
    { minute: 30, recreations: 2, live: { p1: live({ restarted: true }) } },
    [recreate('restarted', 30)],
  ],
  [
    'bound: after 3 recreations the pod is terminated and the run ends (recreate_limit)',
    { minute: 30, recreations: 3, live: { p1: live({ restarted: true }) } },
    [terminate('recreate_limit'), endRun('recreate_limit')],
  ],
  [
    'bound: max_recreations 0 never recreates, even a vanished pod',
    { minute: 30, config: { maxRecreations: 0 }, live: { p1: 'not_found' } },
    [{ type: 'mark_ended', podId: 'p1', reason: 'recreate_limit' }, endRun('recreate_limit')],
  ],
  [
    'bound: null means no bound',
    { minute: 30, recreations: 50, config: { maxRecreations: null }, live: { p1: live({ healthFails: 9 }) } },
    [recreate('unhealthy', 30)],
  ],
  [
    'bound: with replicas, one pod over the bound ends, the healthy one keeps the run going',
    {
      minute: 30,
      recreations: 3,
      config: { replicas: 2 },
      pods: [pod(), pod({ podId: 'p2' })],
      live: { p1: live({ restarted: true }), p2: live({ id: 'p2' }) },
    },
    [
      terminate('recreate_limit'),
      keep('p2'),
      { type: 'create', runId: 'r1', remainingRuntimeMs: 30 * MIN, reason: 'replicas' },
    ],
  ],
  [
    'death: at 58 → recreate with the 5-minute minimum',
    { minute: 58, lastRequestAt: at(57), live: { p1: 'not_found' } },
    [recreate('died', 5)],
  ],
  // The guard's lease (15 min): a pod that stopped itself while no watchdog reached it is parked.
  [
    'manager away: EXITED, last pass 20 min ago ≥ the lease → parked, not recreated',
    {
      minute: 30,
      config: { leaseMs: 15 * MIN, idleLimitMs: null },
      pods: [pod({ accruedUntil: at(10) })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [{ type: 'mark_stopped', podId: 'p1', reason: 'manager_away' }],
  ],
  [
    'manager away: counts from the ready time when no pass booked it yet',
    {
      minute: 17,
      config: { leaseMs: 15 * MIN, idleLimitMs: null },
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [{ type: 'mark_stopped', podId: 'p1', reason: 'manager_away' }],
  ],
  [
    'manager away: last pass 10 min ago (< lease) → it died: recreate',
    {
      minute: 30,
      config: { leaseMs: 15 * MIN, idleLimitMs: null },
      pods: [pod({ accruedUntil: at(20) })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [recreate('died', 30)],
  ],
  [
    'manager away: an unguarded pod cannot stop itself → recreate',
    {
      minute: 30,
      config: { leaseMs: 15 * MIN, idleLimitMs: null },
      pods: [pod({ accruedUntil: at(10), guard: null })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [recreate('died', 30)],
  ],
  [
    'manager away: never ready → recreate',
    {
      minute: 30,
      config: { leaseMs: 15 * MIN, idleLimitMs: null },
      pods: [pod({ readyAt: null })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [recreate('died', 30)],
  ],
  [
    'manager away: gone (terminated) is a death, not a self-stop → recreate',
    {
      minute: 30,
      config: { leaseMs: 15 * MIN, idleLimitMs: null },
      pods: [pod({ accruedUntil: at(10) })],
      live: { p1: 'not_found' },
    },
    [recreate('died', 30)],
  ],
  [
    'manager away: past the runtime limit it ends instead',
    {
      minute: 65,
      config: { leaseMs: 15 * MIN, idleLimitMs: null },
      pods: [pod({ accruedUntil: at(45) })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [terminate('runtime_limit'), endRun('runtime_limit')],
  ],
  [
    'death: no runtime limit → recreate without one',
    {
      minute: 30,
      run: run({ runtimeLimitMs: null }),
      pods: [pod({ runtimeLimitMs: null })],
      live: { p1: 'not_found' },
    },
    [recreate('died', null)],
  ],
  [
    'death: booting pods are left alone',
    { minute: 5, live: { p1: live({ status: 'STARTING', costPerHr: 0.6 }) } },
    [keep()],
  ],
  [
    'grace: a pod recreated at 58 with 5 min keeps running past the run limit',
    {
      minute: 62,
      lastRequestAt: at(61),
      pods: [pod({ createdAt: at(58), readyAt: null, runtimeLimitMs: 5 * MIN })],
    },
    [keep()],
  ],
  [
    'grace: … and is terminated when its 5 min are up',
    {
      minute: 63,
      lastRequestAt: at(61),
      pods: [pod({ createdAt: at(58), readyAt: null, runtimeLimitMs: 5 * MIN })],
    },
    [terminate('runtime_limit'), endRun('runtime_limit')],
  ],
  [
    'grace: dying after the run limit is never recreated',
    {
      minute: 61,
      lastRequestAt: at(60),
      pods: [pod({ createdAt: at(58), runtimeLimitMs: 5 * MIN })],
      live: { p1: 'not_found' },
    },
    [{ type: 'mark_ended', podId: 'p1', reason: 'runtime_limit' }, endRun('runtime_limit')],
  ],
  [
    'death after the limit: ends, never recreates',
    { minute: 61, live: { p1: live({ status: 'EXITED', costPerHr: 0 }) } },
    [terminate('runtime_limit'), endRun('runtime_limit')],
  ],
  [
    'death while over budget: ends, never recreates',
    {
      minute: 30,
      lastRequestAt: at(29),
      live: { p1: 'not_found' },
      run: run({ budgetUsd: 1 }),
      spend: { run: 1 },
    },
    [{ type: 'mark_ended', podId: 'p1', reason: 'budget_run' }, endRun('budget_run')],
  ],

  // RunPod unreachable: nothing destructive, even past every limit.
  [
    'unreachable → noop only',
    { minute: 120, live: 'unreachable', run: run({ budgetUsd: 0.01 }) },
    [{ type: 'noop_unreachable' }],
  ],
  ['a pod missing from the live view is kept', { minute: 120, live: {} }, [keep()]],

  // Pods the state already wants gone, and leftovers of ended runs.
  [
    'terminate not confirmed → terminate again',
    { minute: 10, pods: [pod({ desired: 'terminated', endReason: 'idle' })] },
    [terminate('retry')],
  ],
  [
    'terminate confirmed → end the row with its reason',
    { minute: 10, pods: [pod({ desired: 'terminated', endReason: 'idle' })], live: { p1: 'not_found' } },
    [{ type: 'mark_ended', podId: 'p1', reason: 'idle' }],
  ],
  [
    'a pod of an ended run → terminate',
    { minute: 10, run: run({ endedAt: at(5) }) },
    [terminate('run_ended')],
  ],
  ['a pod with no run at all → terminate', { minute: 10, run: null }, [terminate('run_ended')]],
  [
    'a stopped pod that vanished → end its row',
    { minute: 10, pods: [pod({ desired: 'stopped' })], live: { p1: 'not_found' } },
    [{ type: 'mark_ended', podId: 'p1', reason: 'gone' }],
  ],

  // Orphans.
  [
    'orphans are reported',
    { minute: 10, foreignPods: [live({ id: 'x1', name: 'runpod-llm-zzz' })] },
    [keep(), { type: 'report_orphan', podId: 'x1', name: 'runpod-llm-zzz' }],
  ],
  [
    'orphans are terminated with reap',
    { minute: 10, config: { reap: true }, foreignPods: [live({ id: 'x1', name: 'runpod-llm-zzz' })] },
    [keep(), { type: 'report_orphan', podId: 'x1', name: 'runpod-llm-zzz' }, terminate('orphan', 'x1')],
  ],
  [
    'terminated orphans are ignored',
    { minute: 10, config: { reap: true }, foreignPods: [live({ id: 'x1', status: 'TERMINATED' })] },
    [keep()],
  ],
  [
    "another install's pods are reported and never reaped",
    { minute: 10, config: { reap: true }, otherInstallPods: [live({ id: 'x2', name: 'runpod-llm-other' })] },
    [keep(), { type: 'report_orphan', podId: 'x2', name: 'runpod-llm-other', otherInstall: true }],
  ],
  [
    'orphans without a run are still reported',
    { minute: 10, run: null, pods: [], foreignPods: [live({ id: 'x1', name: 'runpod-llm-zzz' })] },
    [{ type: 'report_orphan', podId: 'x1', name: 'runpod-llm-zzz' }],
  ],

  // Replicas.
  [
    'replicas: one missing → create it with the remaining runtime',
    { minute: 20, lastRequestAt: at(19), config: { replicas: 2 } },
    [keep(), { type: 'create', runId: 'r1', remainingRuntimeMs: 40 * MIN, reason: 'replicas' }],
  ],
  [
    'replicas: a dead one is recreated, not duplicated',
    {
      minute: 20,
      lastRequestAt: at(19),
      config: { replicas: 2 },
      pods: [pod(), pod({ podId: 'p2' })],
      live: { p1: live(), p2: 'not_found' },
    },
    [keep(), recreate('died', 40, 'p2')],
  ],
  [
    'replicas: not refilled while idle',
    { lastRequestAt: at(3), minute: 40, config: { replicas: 2 } },
    [{ type: 'stop', podId: 'p1', reason: 'idle' }],
  ],
  [
    'replicas: a parked group is not refilled',
    {
      minute: 40,
      config: { replicas: 2 },
      pods: [pod({ desired: 'stopped' })],
      live: { p1: live({ status: 'EXITED', costPerHr: 0 }) },
    },
    [keep()],
  ],
  [
    'replicas: idle applies to the whole group',
    {
      lastRequestAt: at(3),
      minute: 18,
      config: { replicas: 2 },
      pods: [pod(), pod({ podId: 'p2', readyAt: at(5) })],
    },
    [
      { type: 'stop', podId: 'p1', reason: 'idle' },
      { type: 'stop', podId: 'p2', reason: 'idle' },
    ],
  ],
  [
    'replicas: the budget counts the sum (2 × $0.01/min hits $0.25 at minute 12)',
    {
      minute: 12,
      lastRequestAt: at(11),
      run: run({ budgetUsd: 0.25 }),
      config: { replicas: 2 },
      pods: [pod(), pod({ podId: 'p2' })],
    },
    [terminate('budget_run'), terminate('budget_run', 'p2'), endRun('budget_run')],
  ],
  [
    'replicas: … and keeps both at minute 11',
    {
      minute: 11,
      lastRequestAt: at(10),
      run: run({ budgetUsd: 0.25 }),
      config: { replicas: 2 },
      pods: [pod(), pod({ podId: 'p2' })],
    },
    [keep(), keep('p2')],
  ],
  [
    'replicas: the run ends only with its last pod',
    {
      minute: 61,
      lastRequestAt: at(60),
      config: { replicas: 2 },
      pods: [pod(), pod({ podId: 'p2', createdAt: at(58), runtimeLimitMs: 5 * MIN })],
    },
    [terminate('runtime_limit'), keep('p2')],
  ],
];

describe('decide (table, simulated time)', () => {
  for (const [name, scenario, expected] of table) {
    it(name, () => {
      assert.deepEqual(decisions(scenario), expected);
    });
  }
});

describe('decide: cost accrual', () => {
  it('books the cost since the last accrual at the billed rate, first, before other actions', () => {
    const actions = decide(input({ minute: 20, lastRequestAt: at(19), pods: [booked(10)] }));
    assert.equal(actions[0]?.type, 'accrue');
    const accrue = actions[0];
    assert.equal(accrue.podId, 'p1');
    assert.equal(accrue.until, at(20));
    assert.ok(Math.abs(accrue.usd - 0.1) < 1e-12);
  });

  it('counts from creation when nothing was booked yet, books 0 for a stopped pod, nothing for a gone one', () => {
    const a = decide(
      input({
        minute: 30,
        pods: [pod(), pod({ podId: 'p2' }), pod({ podId: 'p3' })],
        config: { replicas: 3 },
        live: { p1: live(), p2: live({ id: 'p2', status: 'EXITED', costPerHr: 0 }), p3: 'not_found' },
      }),
    );
    const accrued = a.filter((x): x is Extract<Action, { type: 'accrue' }> => x.type === 'accrue');
    assert.deepEqual(
      accrued.map((x) => x.podId),
      ['p1', 'p2'],
    );
    assert.ok(Math.abs((accrued[0]?.usd ?? 0) - 0.3) < 1e-12);
    assert.equal(accrued[1]?.usd, 0);
  });

  it('books nothing twice in the same instant, and nothing when unreachable', () => {
    assert.deepEqual(decide(input({ minute: 10, lastRequestAt: at(9), pods: [booked(10)] })), [keep()]);
    assert.deepEqual(decide(input({ minute: 10, live: 'unreachable' })), [{ type: 'noop_unreachable' }]);
  });
});

describe('observePod: what one pass learns of a pod (simulated time)', () => {
  const fresh = { uptimeS: null, uptimeAt: null, healthFails: 0, zeroGpuPolls: 0 };
  const seen = (over: Partial<Parameters<typeof observePod>[1]> = {}): Parameters<typeof observePod>[1] => ({
    status: 'RUNNING',
    uptimeS: 100,
    gpuCount: 1,
    healthOk: true,
    ...over,
  });

  it('an uptime that kept growing is no restart; one well below the expected value is', () => {
    const first = observePod(fresh, seen({ uptimeS: 300 }), at(0));
    assert.equal(first.restarted, false, 'nothing to compare with yet');
    assert.equal(observePod(first.memory, seen({ uptimeS: 330 }), at(0) + 30_000).restarted, false);
    assert.equal(
      observePod(first.memory, seen({ uptimeS: 326 }), at(0) + 30_000).restarted,
      false,
      'within the slack',
    );
    assert.equal(
      observePod(first.memory, seen({ uptimeS: 20 }), at(0) + 30_000).restarted,
      true,
      'restarted 20 s ago',
    );
    assert.equal(observePod(first.memory, seen({ uptimeS: 4 }), at(0) + 30_000).restarted, true);
    // A crash loop faster than a pass: the uptime is never more than a few seconds.
    let memory = first.memory;
    for (let pass = 1; pass <= 3; pass++) {
      const o = observePod(memory, seen({ uptimeS: pass % 2 === 0 ? 2 : 9 }), at(0) + pass * 30_000);
      assert.equal(o.restarted, true, `pass ${pass}`);
      memory = o.memory;
    }
  });

  it('a pod that was not RUNNING in between (stopped and started on purpose) does not count as restarted', () => {
    const running = observePod(fresh, seen({ uptimeS: 600 }), at(0)).memory;
    const stopped = observePod(
      running,
      seen({ status: 'EXITED', uptimeS: null, healthOk: null }),
      at(1),
    ).memory;
    assert.equal(stopped.uptimeS, null);
    assert.equal(observePod(stopped, seen({ uptimeS: 5 }), at(2)).restarted, false);
  });

  it('counts consecutive failed health checks, resets on success, keeps the count when not checked', () => {
    let m = observePod(fresh, seen({ healthOk: false }), at(0));
    m = observePod(m.memory, seen({ healthOk: false, uptimeS: 160 }), at(1));
    assert.equal(m.healthFails, 2);
    assert.equal(observePod(m.memory, seen({ healthOk: null, uptimeS: 220 }), at(2)).healthFails, 2);
    assert.equal(observePod(m.memory, seen({ healthOk: true, uptimeS: 220 }), at(2)).healthFails, 0);
  });

  it('zero GPUs counts only RUNNING polls with a nonzero uptime, in a row', () => {
    const one = observePod(fresh, seen({ gpuCount: 0, uptimeS: 0 }), at(0));
    assert.equal(one.zeroGpuPolls, 0, 'uptime 0: just started');
    const a = observePod(fresh, seen({ gpuCount: 0, uptimeS: 10 }), at(0));
    const b = observePod(a.memory, seen({ gpuCount: 0, uptimeS: 70 }), at(1));
    assert.equal(b.zeroGpuPolls, 2);
    assert.equal(observePod(b.memory, seen({ gpuCount: 1, uptimeS: 130 }), at(2)).zeroGpuPolls, 0);
  });
});

describe('remainingRuntimeMs', () => {
  it('is the limit minus the elapsed run time, at least the minimum, null without a limit', () => {
    assert.equal(remainingRuntimeMs(run(), at(20)), 40 * MIN);
    assert.equal(remainingRuntimeMs(run(), at(58)), 5 * MIN);
    assert.equal(remainingRuntimeMs(run(), at(90), 10 * MIN), 10 * MIN);
    assert.equal(remainingRuntimeMs(run({ runtimeLimitMs: null }), at(20)), null);
  });
});

describe('decide: a whole session minute by minute', () => {
  it('stops for idleness at minute 18, never earlier, and never acts when RunPod is unreachable', () => {
    const firstStop: number[] = [];
    for (let minute = 3; minute <= 30; minute++) {
      const unreachable = minute % 7 === 0;
      const actions = decisions(
        unreachable
          ? { minute, lastRequestAt: at(3), live: 'unreachable' }
          : { minute, lastRequestAt: at(3) },
      );
      if (unreachable) assert.deepEqual(actions, [{ type: 'noop_unreachable' }]);
      else if (actions.some((a) => a.type === 'stop')) firstStop.push(minute);
    }
    assert.equal(firstStop[0], 18);
  });
});
