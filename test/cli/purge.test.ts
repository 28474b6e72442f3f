import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { listAudit, appendAudit } from '../../src/state/audit.js';
import { openState } from '../../src/state/db.js';
import { getPod, insertPod, markPodEnded } from '../../src/state/pods.js';
import { createRun, endRun, getRun } from '../../src/state/runs.js';
import { addSpend, spendForRun, spendSince, utcMonthStart } from '../../src/state/spend.js';
import { cli } from './cli-rig.js';

const DAY = 86_400_000;

describe('runpod-llm purge', () => {
  const home = mkdtempSync(join(tmpdir(), 'purge-'));
  const cacheDir = join(home, 'cache');
  const env = {
    RUNPOD_LLM_HOME: home,
    CACHE_DIR: cacheDir,
    RUNPOD_LLM_CONFIG: join(import.meta.dirname, 'fixtures-empty-config.json'),
  };
  // A process that passes for the running gateway daemon (its command line says `gateway`).
  const gateway = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)', 'gateway'], {
    stdio: 'ignore',
  });
  after(() => {
    gateway.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  });

  const logs = join(home, 'logs');
  const now = Date.now();
  let ended: string;
  let active: string;
  let monthSpend: number;

  it('setup: logs, a disk cache and a state with an active and ended runs', () => {
    mkdirSync(logs, { recursive: true, mode: 0o700 });
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'gateway.pid'), `${gateway.pid}\n`, { mode: 0o600 });
    for (const [name, text] of [
      ['gateway.log', 'current\n'],
      ['gateway.log.1', 'old 1\n'],
      ['gateway.log.2', 'old 2\n'],
      ['gateway.out', 'listening\n'],
      ['watchdog.log', 'w\n'],
      ['watchdog.out', 'w\n'],
      ['notes.txt', 'not ours\n'],
    ]) {
      writeFileSync(join(logs, name as string), text as string, { mode: 0o600 });
    }
    writeFileSync(join(home, 'log-ip-key.json'), '{"day":"2026-12-02","key":"00"}\n', { mode: 0o600 });
    for (const k of ['a', 'b', 'c'])
      writeFileSync(join(cacheDir, `${k.repeat(64)}.entry`), 'x'.repeat(100), { mode: 0o600 });
    writeFileSync(join(cacheDir, 'keep.txt'), 'not a cache entry');

    const state = openState({ home });
    try {
      const old = createRun(state, { runtimeLimitMs: null, budgetUsd: null, startedAt: now - 100 * DAY });
      ended = old.runId;
      insertPod(state, {
        podId: 'oldpod',
        name: 'runpod-llm-oldpod',
        runId: old.runId,
        gpuTypeId: 'NVIDIA A40',
        gpuCount: 1,
        cloud: 'SECURE',
        costPerHr: 0.4,
        model: 'm',
        status: 'RUNNING',
        createdAt: now - 100 * DAY,
        runtimeLimitMs: null,
        idleLimitMs: null,
        idleAction: 'terminate',
        budgetUsd: null,
        apiKey: 'k1',
      });
      addSpend(state, { podId: 'oldpod', at: now - 100 * DAY, usd: 3 });
      addSpend(state, { podId: 'oldpod', at: utcMonthStart(now), usd: 2 }); // this month: the budget counts it
      appendAudit(state, { action: 'create', podId: 'oldpod', at: now - 100 * DAY });
      // An ended pod's long history: the file must shrink once it is purged.
      for (let i = 0; i < 2_000; i++)
        appendAudit(state, {
          action: 'keep',
          podId: 'oldpod',
          at: now - 100 * DAY + i,
          details: { note: 'x'.repeat(400) },
        });
      markPodEnded(state, 'oldpod', 'runtime_limit', now - 99 * DAY);
      endRun(state, old.runId, 'runtime_limit', now - 99 * DAY);
      const run = createRun(state, { runtimeLimitMs: null, budgetUsd: 10, startedAt: now - DAY });
      active = run.runId;
      insertPod(state, {
        podId: 'livepod',
        name: 'runpod-llm-livepod',
        runId: run.runId,
        gpuTypeId: 'NVIDIA A40',
        gpuCount: 1,
        cloud: 'SECURE',
        costPerHr: 0.4,
        model: 'm',
        status: 'RUNNING',
        createdAt: now - DAY,
        runtimeLimitMs: null,
        idleLimitMs: null,
        idleAction: 'terminate',
        budgetUsd: 10,
        apiKey: 'k2',
      });
      addSpend(state, { podId: 'livepod', at: now - DAY, usd: 1.5 });
      appendAudit(state, { action: 'create', podId: 'livepod', at: now - DAY });
      monthSpend = spendSince(state, utcMonthStart(now));
    } finally {
      state.close();
    }
  });

  it('refuses a bare purge (exit 2, the fix named)', async () => {
    const run = await cli(['purge'], env);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^error: purge needs to be told what to remove\nfix: runpod-llm purge --logs \| --cache \| --runs \| --all/,
    );
  });

  it('--dry-run --all says what would go and changes nothing', async () => {
    const run = await cli(['purge', '--all', '--dry-run', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.dryRun, true);
    assert.equal(report.logs.removed.length, 5);
    assert.deepEqual(report.logs.emptied, [join(logs, 'gateway.log'), join(logs, 'gateway.out')]);
    assert.equal(report.cache.removed, 3);
    assert.equal(report.runs.runs, 1);
    assert.equal(report.runs.pods, 1);
    assert.ok(
      existsSync(join(logs, 'gateway.log.1')) && existsSync(join(cacheDir, `${'a'.repeat(64)}.entry`)),
    );
    const state = openState({ home });
    try {
      assert.ok(getRun(state, ended));
      assert.ok(getPod(state, 'oldpod'));
    } finally {
      state.close();
    }
  });

  it("--all removes logs, the disk cache and ended runs; keeps the running pod, this month's spend, files it does not own", async () => {
    const run = await cli(['purge', '--all'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^logs: removed 5 file\(s\), emptied 2 in use/m);
    assert.match(run.stdout, /^cache: removed 3 entries \(0\.3 KiB\) from /m);
    assert.match(
      run.stdout,
      /^runs: removed 1 ended run\(s\), 1 pod\(s\), 0 route\(s\), 2001 audit line\(s\), 1 spend row\(s\)/m,
    );
    // The rows are gone from the file too (VACUUM), not only from the tables.
    const sizes = /state file ([\d.]+) (KiB|MiB) → ([\d.]+) (KiB|MiB)/.exec(run.stdout);
    assert.ok(sizes !== null, run.stdout);
    const kib = (n: string | undefined, unit: string | undefined) => Number(n) * (unit === 'MiB' ? 1024 : 1);
    assert.ok(kib(sizes[3], sizes[4]) < kib(sizes[1], sizes[2]) / 2, sizes[0]);
    assert.ok(statSync(join(home, 'state.db')).size < (kib(sizes[1], sizes[2]) * 1024) / 2);
    assert.match(run.stdout, /the running gateway still holds its entries in memory/);

    // The running gateway's files are emptied (it keeps writing them), the rest gone.
    assert.equal(statSync(join(logs, 'gateway.log')).size, 0);
    assert.equal(statSync(join(logs, 'gateway.out')).size, 0);
    for (const name of ['gateway.log.1', 'gateway.log.2', 'watchdog.log', 'watchdog.out'])
      assert.ok(!existsSync(join(logs, name)), name);
    assert.ok(!existsSync(join(home, 'log-ip-key.json')));
    assert.equal(readFileSync(join(logs, 'notes.txt'), 'utf8'), 'not ours\n');
    assert.equal(readFileSync(join(cacheDir, 'keep.txt'), 'utf8'), 'not a cache entry');
    assert.ok(!existsSync(join(cacheDir, `${'a'.repeat(64)}.entry`)));

    const state = openState({ home });
    try {
      assert.equal(getRun(state, ended), undefined);
      assert.equal(getPod(state, 'oldpod'), undefined);
      assert.ok(getRun(state, active)?.endedAt === null, 'the active run stays');
      assert.equal(getPod(state, 'livepod')?.status, 'RUNNING');
      assert.equal(spendForRun(state, active), 1.5);
      assert.equal(
        spendSince(state, utcMonthStart(now)),
        monthSpend,
        "this month's spend, for the monthly budget",
      );
      const audit = listAudit(state);
      assert.ok(
        audit.some((e) => e.podId === 'livepod' && e.action === 'create'),
        "the running pod's audit stays",
      );
      assert.ok(!audit.some((e) => e.podId === 'oldpod'));
      const purge = audit.find((e) => e.action === 'purge');
      assert.equal(purge?.details?.runs, 1);
    } finally {
      state.close();
    }

    const again = await cli(['purge', '--all', '--json'], env);
    const report = JSON.parse(again.stdout);
    assert.deepEqual(report.logs.removed, []);
    assert.equal(report.cache.removed, 0);
    assert.equal(report.runs.runs, 0);
  });
});
