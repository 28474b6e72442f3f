import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUDIT_MAX_ROWS, appendAudit, listAudit } from '../../src/state/audit.js';
import {
  getPod,
  getPodByName,
  insertPod,
  isOurPodName,
  listActivePods,
  markPodEnded,
  markPodReady,
  newPodName,
  setAccruedUntil,
  setPodDesired,
  updatePodSeen,
  type NewPod,
} from '../../src/state/pods.js';
import { activeRun, createRun, endRun, getRun } from '../../src/state/runs.js';
import {
  addSpend,
  spendForRun,
  spendSince,
  spendSummary,
  utcDayStart,
  utcMonthStart,
} from '../../src/state/spend.js';
import { clearWake, pendingWake, requestWake } from '../../src/state/wake-requests.js';
import { tempState } from './helpers.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0); // 2026-11-25 12:00 UTC

function newPod(podId: string, runId: string, at: number): NewPod {
  return {
    podId,
    name: newPodName(),
    runId,
    gpuTypeId: 'NVIDIA A40',
    gpuCount: 1,
    cloud: 'SECURE',
    costPerHr: 0.4,
    model: 'Qwen/Qwen2.5-Coder-7B-Instruct',
    status: 'PROVISIONING',
    createdAt: at,
    runtimeLimitMs: 3_600_000,
    idleLimitMs: 900_000,
    idleAction: 'stop',
    budgetUsd: 5,
    apiKey: `secret-${podId}`,
  };
}

describe('runs and pods', () => {
  it('keeps a run across pods and finds the active one', () => {
    const { state, clock, done } = tempState(T0);
    const run = createRun(state, {
      runtimeLimitMs: 3_600_000,
      budgetUsd: 5,
      config: { model: 'm', replicas: 1 },
    });
    assert.deepEqual(getRun(state, run.runId), run);
    assert.equal(activeRun(state)?.runId, run.runId);
    clock.advance(60_000);
    endRun(state, run.runId, 'runtime_limit');
    endRun(state, run.runId, 'other');
    assert.equal(activeRun(state), undefined);
    assert.deepEqual(getRun(state, run.runId)?.endReason, 'runtime_limit');
    assert.equal(getRun(state, run.runId)?.endedAt, T0 + 60_000);
    done();
  });

  it('records a pod through its life: seen, ready, desired, accrued, ended', () => {
    const { state, clock, done } = tempState(T0);
    const run = createRun(state, { runtimeLimitMs: 3_600_000, budgetUsd: null });
    const pod = insertPod(state, newPod('p1', run.runId, T0));
    assert.equal(pod.desired, 'running');
    assert.equal(pod.restarts, 0);
    assert.ok(isOurPodName(pod.name) && /^runpod-llm-[0-9a-z]{8}$/.test(pod.name));
    assert.equal(getPodByName(state, pod.name)?.podId, 'p1');
    updatePodSeen(state, 'p1', { status: 'RUNNING', costPerHr: 0.44, startedAt: T0 + 30_000 });
    markPodReady(state, 'p1', T0 + 90_000);
    setAccruedUntil(state, 'p1', T0 + 120_000);
    setAccruedUntil(state, 'p1', T0 + 60_000); // never moves back
    let row = getPod(state, 'p1');
    assert.equal(row?.status, 'RUNNING');
    assert.equal(row?.costPerHr, 0.44);
    assert.equal(row?.readyAt, T0 + 90_000);
    assert.equal(row?.accruedUntil, T0 + 120_000);
    setPodDesired(state, 'p1', 'terminated', 'idle');
    assert.deepEqual(
      listActivePods(state, run.runId).map((p) => p.podId),
      ['p1'],
    );
    clock.advance(5_000);
    markPodEnded(state, 'p1', 'gone');
    row = getPod(state, 'p1');
    assert.equal(row?.endedAt, clock.now());
    assert.equal(row?.endReason, 'idle', 'the first reason stays');
    assert.deepEqual(listActivePods(state), []);
    done();
  });

  it('refuses a duplicate pod name and a pod of an unknown run', () => {
    const { state, done } = tempState(T0);
    const run = createRun(state, { runtimeLimitMs: null, budgetUsd: null });
    const first = insertPod(state, newPod('p1', run.runId, T0));
    assert.throws(() => insertPod(state, { ...newPod('p2', run.runId, T0), name: first.name }), /UNIQUE/);
    assert.throws(() => insertPod(state, newPod('p3', 'no-such-run', T0)), /FOREIGN KEY/);
    done();
  });
});

describe('spend', () => {
  it('books per UTC day and sums per day, month and run', () => {
    const { state, done } = tempState(T0);
    const runA = createRun(state, { runtimeLimitMs: null, budgetUsd: null });
    const runB = createRun(state, { runtimeLimitMs: null, budgetUsd: null });
    insertPod(state, newPod('a1', runA.runId, T0));
    insertPod(state, newPod('b1', runB.runId, T0));
    const yesterday = T0 - 86_400_000;
    const lastMonth = Date.UTC(2026, 9, 31, 23, 0, 0);
    addSpend(state, { podId: 'a1', at: lastMonth, usd: 1 });
    addSpend(state, { podId: 'a1', at: yesterday, usd: 0.25 });
    addSpend(state, { podId: 'a1', at: T0, usd: 0.5 });
    addSpend(state, { podId: 'a1', at: T0 + 1000, usd: 0.125 });
    addSpend(state, { podId: 'b1', at: T0, usd: 2 });
    addSpend(state, { podId: 'b1', at: T0, usd: 0 });
    assert.equal(spendSince(state, utcDayStart(T0)), 2.625);
    assert.equal(spendSince(state, utcMonthStart(T0)), 2.875);
    assert.equal(spendForRun(state, runA.runId), 1.875);
    assert.equal(spendForRun(state, runB.runId), 2);
    assert.deepEqual(spendSummary(state, runA.runId, T0), { run: 1.875, day: 2.625, month: 2.875 });
    assert.throws(() => addSpend(state, { podId: 'a1', at: T0, usd: -1 }), TypeError);
    done();
  });

  it('computes UTC day and month starts', () => {
    assert.equal(utcDayStart(T0), Date.UTC(2026, 10, 25));
    assert.equal(utcMonthStart(T0), Date.UTC(2026, 10, 1));
    assert.equal(utcMonthStart(Date.UTC(2026, 11, 31, 23, 59)), Date.UTC(2026, 11, 1));
  });
});

describe('audit', () => {
  it('appends events with reasons and details, newest first, filtered by pod', () => {
    const { state, clock, done } = tempState(T0);
    appendAudit(state, { action: 'create', podId: 'p1', details: { gpu: 'A40', price: 0.4 } });
    clock.advance(1000);
    appendAudit(state, { action: 'terminate', reason: 'runtime_limit', podId: 'p1' });
    appendAudit(state, { action: 'report_orphan', podId: 'x' });
    const all = listAudit(state);
    assert.deepEqual(
      all.map((e) => e.action),
      ['report_orphan', 'terminate', 'create'],
    );
    assert.equal(all[1]?.reason, 'runtime_limit');
    assert.equal(all[1]?.at, T0 + 1000);
    assert.deepEqual(all[2]?.details, { gpu: 'A40', price: 0.4 });
    assert.deepEqual(
      listAudit(state, { limit: 1 }).map((e) => e.action),
      ['report_orphan'],
    );
    assert.deepEqual(
      listAudit(state, { podId: 'p1' }).map((e) => e.action),
      ['terminate', 'create'],
    );
    done();
  });
});

describe('audit bound', () => {
  it(`keeps only the newest ${AUDIT_MAX_ROWS} events`, () => {
    const { state, done } = tempState(T0);
    appendAudit(state, { action: 'old' });
    // Jump the id sequence instead of writing ten thousand rows.
    state.sql.prepare("INSERT INTO audit (id, at, action) VALUES (?, 0, 'filler')").run(AUDIT_MAX_ROWS + 5);
    appendAudit(state, { action: 'new' });
    assert.deepEqual(
      listAudit(state).map((e) => e.action),
      ['new', 'filler'],
    );
    done();
  });
});

describe('wake requests', () => {
  it('keeps one pending request however often it is asked, until cleared', () => {
    const { state, done } = tempState(T0);
    assert.equal(pendingWake(state), null);
    const first = requestWake(state, T0);
    assert.equal(first.created, true);
    const second = requestWake(state, T0 + 500);
    assert.equal(second.created, false);
    assert.equal(second.wake.id, first.wake.id);
    assert.deepEqual(pendingWake(state), {
      id: first.wake.id,
      requestedAt: T0,
      lastRequestedAt: T0 + 500,
      requests: 2,
    });
    clearWake(state);
    assert.equal(pendingWake(state), null);
    const third = requestWake(state, T0 + 1000);
    assert.equal(third.created, true);
    assert.notEqual(third.wake.id, first.wake.id);
    done();
  });

  it('the schema itself forbids two pending requests', () => {
    const { state, done } = tempState(T0);
    requestWake(state, T0);
    assert.throws(
      () =>
        state.sql.prepare('INSERT INTO wake_requests (requested_at, last_requested_at) VALUES (1, 1)').run(),
      /UNIQUE/,
    );
    done();
  });
});
