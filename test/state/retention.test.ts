import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { statusData } from '../../src/doctor/status.js';
import { up } from '../../src/lifecycle/up.js';
import { runWatchLoop } from '../../src/watchdog/loop.js';
import { appendAudit, listAudit } from '../../src/state/audit.js';
import { insertPod, markPodEnded } from '../../src/state/pods.js';
import { DAY_MS, lastPruneAt, pruneIfDue } from '../../src/state/retention.js';
import { upsertRoute } from '../../src/state/routes.js';
import { createRun, endRun, getRun } from '../../src/state/runs.js';
import { addSpend, spendSince, spendSummary, utcDayStart, utcMonthStart } from '../../src/state/spend.js';
import { recordUsageBatch } from '../../src/state/usage.js';
import { clearWake, requestWake } from '../../src/state/wake-requests.js';
import { type LifecycleRig, startLifecycleRig, T0 } from '../lifecycle/rig.js';

const RETENTION = 400 * DAY_MS;

/** A past run of one day with one pod, its spend, audit lines and a route, ended. */
function pastRun(rig: LifecycleRig, i: number, at: number): { runId: string; podId: string } {
  const { state } = rig;
  const run = createRun(state, { runtimeLimitMs: null, budgetUsd: null, startedAt: at, config: {} });
  const podId = `pastpod${i}`;
  insertPod(state, {
    podId,
    name: `runpod-llm-past${i}`,
    runId: run.runId,
    gpuTypeId: 'NVIDIA A40',
    gpuCount: 1,
    cloud: 'SECURE',
    costPerHr: 0.4,
    model: 'm',
    status: 'RUNNING',
    createdAt: at,
    runtimeLimitMs: null,
    idleLimitMs: null,
    idleAction: 'terminate',
    budgetUsd: null,
    apiKey: `k${i}`,
  });
  upsertRoute(state, {
    routeId: `route-${podId}`,
    podId,
    baseUrl: 'https://x.invalid/v1',
    apiKey: 'k',
    model: 'm',
  });
  recordUsageBatch(state, [
    { routeId: `route-${podId}`, lastRequestAt: at, requests: 1, tokensIn: 1, tokensOut: 1 },
  ]);
  addSpend(state, { podId, at, usd: 1 + i / 100, runId: run.runId });
  addSpend(state, { podId, at: at + 3_600_000, usd: 0.5, runId: run.runId });
  appendAudit(state, { action: 'create', podId, at });
  appendAudit(state, { action: 'terminate', reason: 'runtime_limit', podId, at: at + 7_200_000 });
  markPodEnded(state, podId, 'runtime_limit', at + 7_200_000);
  endRun(state, run.runId, 'runtime_limit', at + 7_200_000);
  requestWake(state, at);
  clearWake(state, at + 60_000);
  return { runId: run.runId, podId };
}

type Ledger = Map<string, { day: number; runId: string | null; usd: number }>;

/** Every spend row ever seen, so pruned rows still count for the comparison. */
function record(rig: LifecycleRig, ledger: Ledger): void {
  for (const r of rig.state.stmt('SELECT pod_id, day_start, run_id, usd FROM spend').all() as Array<{
    pod_id: string;
    day_start: number;
    run_id: string | null;
    usd: number;
  }>) {
    ledger.set(`${r.pod_id}@${r.day_start}`, { day: r.day_start, runId: r.run_id, usd: r.usd });
  }
}
const sum = (ledger: Ledger, keep: (e: { day: number; runId: string | null }) => boolean): number =>
  [...ledger.values()].filter(keep).reduce((s, e) => s + e.usd, 0);
const close = (a: number, b: number, what: string): void =>
  assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);

describe('state retention', () => {
  let rig: LifecycleRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('a simulated year of daily watchdog passes keeps audit and spend within the retention, and status totals unchanged', async () => {
    rig = await startLifecycleRig({ manager: { runtime_limit: 'off', idle_limit: 'off', pod_lease: 'off' } });
    const r = rig;
    // 450 days of history before today: a run every 5 days.
    const past: Array<{ runId: string; podId: string; at: number }> = [];
    for (let d = 450, i = 0; d >= 5; d -= 5, i++) {
      const at = T0 - d * DAY_MS;
      past.push({ ...pastRun(r, i, at), at });
    }
    r.clock.set(T0);
    const started = await up(r.deps, r.settings);
    const ledger: Ledger = new Map();
    record(r, ledger);

    const abort = new AbortController();
    let passes = 0;
    const checks: string[] = [];
    const why = await runWatchLoop(
      { ...r.deps, signal: abort.signal, sleep: async (ms) => r.clock.advance(ms) },
      {
        home: r.home,
        intervalMs: DAY_MS,
        reap: false,
        fallback: r.settings,
        retentionMs: RETENTION,
        onReport: () => {
          // Before this pass's prune: what status and the budgets read must match the full history.
          record(r, ledger);
          const now = r.clock.now();
          const booked = spendSummary(r.state, started.run.runId, now);
          close(
            booked.day,
            sum(ledger, (e) => e.day >= utcDayStart(now)),
            `day ${passes} today`,
          );
          close(
            booked.month,
            sum(ledger, (e) => e.day >= utcMonthStart(now)),
            `day ${passes} month`,
          );
          close(
            booked.run,
            sum(ledger, (e) => e.runId === started.run.runId),
            `day ${passes} run`,
          );
          close(
            spendSince(r.state, now - RETENTION + DAY_MS),
            sum(ledger, (e) => e.day >= utcDayStart(now - RETENTION + DAY_MS)),
            `day ${passes} retained window`,
          );
          checks.push(new Date(now).toISOString());
          if (++passes >= 366) abort.abort();
        },
      },
    );
    assert.equal(why, 'stopped');
    assert.equal(checks.length, 366);
    const now = r.clock.now();
    assert.ok(now >= T0 + 365 * DAY_MS);

    // Within the retention: nothing older is left.
    const oldestAudit = r.state.stmt('SELECT min(at) FROM audit').pluck().get() as number;
    const oldestSpend = r.state.stmt('SELECT min(day_start) FROM spend').pluck().get() as number;
    assert.ok(oldestAudit >= now - RETENTION - DAY_MS, `oldest audit ${new Date(oldestAudit).toISOString()}`);
    assert.ok(
      oldestSpend >= utcDayStart(now - RETENTION - DAY_MS),
      `oldest spend ${new Date(oldestSpend).toISOString()}`,
    );
    // Old runs went with their pods, routes and usage rows; recent ones stay.
    for (const p of past) {
      const expired = p.at + 7_200_000 < now - RETENTION - DAY_MS;
      const kept = p.at + 7_200_000 >= now - RETENTION + DAY_MS;
      if (expired) {
        assert.equal(getRun(r.state, p.runId), undefined, `run of ${new Date(p.at).toISOString()} pruned`);
        assert.equal(r.state.stmt('SELECT count(*) FROM pods WHERE pod_id = ?').pluck().get(p.podId), 0);
        assert.equal(r.state.stmt('SELECT count(*) FROM routes WHERE pod_id = ?').pluck().get(p.podId), 0);
        assert.equal(
          r.state.stmt('SELECT count(*) FROM usage WHERE scope = ?').pluck().get(`route-${p.podId}`),
          0,
        );
      } else if (kept) {
        assert.ok(getRun(r.state, p.runId), `run of ${new Date(p.at).toISOString()} kept`);
      }
    }
    // The active run, its pod and its whole year of spend are untouched.
    assert.ok(getRun(r.state, started.run.runId)?.endedAt === null);
    close(
      spendSummary(r.state, started.run.runId, now).run,
      sum(ledger, (e) => e.runId === started.run.runId),
      'active run total',
    );
    assert.equal(
      r.state.stmt('SELECT count(*) FROM wake_requests WHERE cleared_at IS NOT NULL').pluck().get(),
      0,
      'cleared wake requests pruned',
    );
    // Pruned at most once a day, each prune audited with its counts.
    const prunes = listAudit(r.state, { limit: 10_000 }).filter((e) => e.action === 'prune');
    assert.ok(prunes.length >= 70 && prunes.length <= 366, `prunes audited: ${prunes.length}`);
    const days = prunes.map((e) => utcDayStart(e.at));
    assert.equal(new Set(days).size, days.length, 'at most one prune a day');
    const first = prunes[prunes.length - 1];
    assert.equal(typeof first?.details?.spend, 'number');
    assert.equal(first?.details?.retentionDays, 400);
    const total = prunes.reduce((s, e) => s + Number(e.details?.runs ?? 0), 0);
    assert.ok(total >= past.filter((p) => p.at + 7_200_000 < now - RETENTION - DAY_MS).length);

    // status reads the same as the ledger after it all.
    const status = await statusData({
      state: r.state,
      clock: r.clock,
      fetch: globalThis.fetch,
      fallback: r.settings,
    });
    const pending = status.spend.today - spendSummary(r.state, started.run.runId, now).day;
    close(
      status.spend.month - pending,
      sum(ledger, (e) => e.day >= utcMonthStart(now)),
      'status month',
    );
    close(
      status.spend.run - pending,
      sum(ledger, (e) => e.runId === started.run.runId),
      'status run',
    );
  });

  it('prunes at most once a day, and not the newest run even when it ended long ago', async () => {
    rig = await startLifecycleRig();
    const r = rig;
    const old = pastRun(r, 1, T0 - 500 * DAY_MS);
    const newest = pastRun(r, 2, T0 - 450 * DAY_MS);
    const first = pruneIfDue(r.state, { now: T0, retentionMs: RETENTION });
    assert.ok(first !== null);
    assert.equal(first.runs, 1);
    assert.equal(getRun(r.state, old.runId), undefined);
    assert.ok(getRun(r.state, newest.runId), 'the newest run may be woken again: kept with its spend');
    assert.equal(spendSummary(r.state, newest.runId, T0).run, 1.52);
    assert.equal(lastPruneAt(r.state), T0);
    assert.equal(
      pruneIfDue(r.state, { now: T0 + DAY_MS - 1, retentionMs: RETENTION }),
      null,
      'not twice a day',
    );
    assert.notEqual(pruneIfDue(r.state, { now: T0 + DAY_MS, retentionMs: RETENTION }), null);
    assert.notEqual(
      pruneIfDue(r.state, { now: T0 - 5 * DAY_MS, retentionMs: RETENTION }),
      null,
      'a clock set back does not stop pruning',
    );
  });
});
