import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Emulator, startEmulator } from '../../src/emulator/emulator.js';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { createRunPodClient, type RunPodClient } from '../../src/runpod/client.js';
import { startCloudflareFront } from './cloudflare-front.js';
import { GUARD_PY, httpRequest, rawRequest, type RunningGuard, startGuard } from './run-guard.js';

const KEY = 'vk_guard_lease_test_0123456789';
const MODEL = 'leased-model';
const AUTH = { authorization: `Bearer ${KEY}` };

/**
 * The guard's self-stop (src/guard/guard.py, SECURITY.md "The pod URL"), with the real guard
 * under python3 and the emulator as RunPod: the pod-scoped key and pod id are what RunPod puts in
 * every pod's env (RUNPOD_API_KEY, RUNPOD_POD_ID). Lease of 2 s, checked every second.
 */
describe('guard self-stop: the lease and the stop time', () => {
  let emu: Emulator;
  let api: RunPodClient;
  let vllm: VllmStandin;
  const guards: RunningGuard[] = [];

  before(async () => {
    emu = await startEmulator({ schedule: { provisioningMs: 10, startingMs: 10, loadMs: 10 } });
    api = createRunPodClient({ baseUrl: emu.apiUrl, apiKey: emu.apiKey, retries: 0 });
    vllm = await startVllmStandin({ model: MODEL, apiKey: KEY });
  });
  after(async () => {
    await Promise.all(guards.map((g) => g.close()));
    await vllm.close();
    await emu.close();
  });

  async function runningPod(): Promise<string> {
    const created = await api.createPod({
      name: `runpod-llm-${Math.random().toString(36).slice(2, 10)}`,
      image: 'vllm/vllm-openai:v0.11.0',
      ports: ['8000/http'],
      gpu: { id: 'NVIDIA RTX A5000', count: 1 },
    });
    await until(() => emu.pods.get(created.id)?.status === 'RUNNING', 'the pod to run');
    return created.id;
  }

  async function guardFor(podId: string, env: Record<string, string> = {}): Promise<RunningGuard> {
    const guard = await startGuard({
      GUARD_UPSTREAM: vllm.url,
      GUARD_API_KEY: KEY,
      GUARD_LEASE_TICK: '1',
      GUARD_RUNPOD_API_URL: emu.apiUrl,
      RUNPOD_POD_ID: podId,
      RUNPOD_API_KEY: emu.apiKey,
      ...env,
    });
    guards.push(guard);
    return guard;
  }

  async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  /** Sends `request` every 400 ms for `ms` (five renewals per lease), returning the statuses. */
  async function keepSending(guard: RunningGuard, request: string, ms: number): Promise<number[]> {
    const statuses: number[] = [];
    for (const end = Date.now() + ms; Date.now() < end; await sleep(400))
      statuses.push((await rawRequest(guard.port, request)).status);
    return statuses;
  }

  const lease = httpRequest('POST', '/runpod-llm/lease', AUTH);

  it("renewed leases keep the pod; once they stop, the guard stops its pod through RunPod's API", async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '2' });
    const statuses = await keepSending(guard, lease, 3_500);
    assert.ok(statuses.length >= 5 && statuses.every((s) => s === 200), JSON.stringify(statuses));
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING', 'renewed for longer than the lease: still running');
    assert.ok(!guard.lines().some((l) => l.includes('self-stop: lease expired')));

    await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the guard to stop the pod');
    await until(() => guard.lines().some((l) => l.includes('stopping pod')), "the guard's line");
    assert.ok(
      guard
        .lines()
        .some((l) =>
          new RegExp(
            `^guard self-stop: lease expired \\(nothing from the manager for [23] s\\); stopping pod ${podId}: HTTP 200 \\(stopped\\)$`,
          ).test(l),
        ),
      guard.lines().join('\n'),
    );
    assert.match(guard.lines().join('\n'), /^guard self-stop: lease 2 s, stop at none$/m);
    const all = guard.lines().join('\n');
    assert.ok(!all.includes(emu.apiKey) && !all.includes(KEY), "no key in the guard's log");
  });

  it('every authorised request renews the lease too; a wrong key is refused and renews nothing', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '2' });
    const chat = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    const request = httpRequest(
      'POST',
      '/v1/chat/completions',
      { ...AUTH, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(chat)) },
      chat,
    );
    assert.ok((await keepSending(guard, request, 3_500)).every((s) => s === 200));
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING');

    const wrong = httpRequest('POST', '/runpod-llm/lease', {
      authorization: 'Bearer not-the-pod-key-000000',
    });
    const refused = keepSending(guard, wrong, 4_000);
    await until(
      () => emu.pods.get(podId)?.status === 'EXITED',
      'the lease to run out despite wrong-key renewals',
    );
    assert.ok((await refused).every((s) => s === 401));
    // GET on the lease route is not a route at all.
    assert.equal((await rawRequest(guard.port, httpRequest('GET', '/runpod-llm/lease', AUTH))).status, 404);
  });

  it('stops the pod at GUARD_STOP_AT whatever the lease says', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, {
      GUARD_LEASE_SECONDS: '600',
      GUARD_STOP_AT: String(Math.ceil(Date.now() / 1000) + 2),
    });
    const renewals = keepSending(guard, lease, 2_000);
    await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the stop time');
    await renewals;
    await until(() => guard.lines().some((l) => l.includes('stopping pod')), "the guard's line");
    assert.ok(
      guard
        .lines()
        .some((l) => l === `guard self-stop: stop time reached; stopping pod ${podId}: HTTP 200 (stopped)`),
      guard.lines().join('\n'),
    );
  });

  it('a refused stop is logged with its status only, never the key, and the pod is left as it is', async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, {
      GUARD_LEASE_SECONDS: '1',
      RUNPOD_API_KEY: 'rp_wrong_pod_scoped_key_1234',
    });
    await until(() => guard.lines().some((l) => l.includes('stopping pod')), 'the attempt');
    assert.ok(
      guard
        .lines()
        .some((l) =>
          new RegExp(
            `^guard self-stop: lease expired \\(nothing from the manager for [12] s\\); stopping pod ${podId}: HTTP 401 \\(key refused\\)$`,
          ).test(l),
        ),
      guard.lines().join('\n'),
    );
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
    assert.ok(!guard.lines().join('\n').includes('rp_wrong_pod_scoped_key_1234'));
  });

  it("without RunPod's pod env it says it cannot stop the pod, and keeps guarding", async () => {
    const podId = await runningPod();
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '1', RUNPOD_POD_ID: '' });
    await until(
      () => guard.lines().some((l) => l.includes('RUNPOD_POD_ID or RUNPOD_API_KEY is not in the pod env')),
      'the warning',
    );
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
    assert.equal((await rawRequest(guard.port, httpRequest('GET', '/v1/models', AUTH))).status, 200);
  });
  /** The lease answer, once the key check has a verdict (not "checking"). */
  async function leaseAnswer(guard: RunningGuard): Promise<Record<string, unknown>> {
    let answer: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) {
      const res = await rawRequest(guard.port, lease);
      assert.equal(res.status, 200, res.raw);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      answer = JSON.parse(res.body) as Record<string, unknown>;
      if (answer.self_stop !== 'checking') return answer;
      await sleep(100);
    }
    return answer;
  }

  it('answers the lease with its version, its settings and whether the pod key can stop the pod (checked read-only at start)', async () => {
    const podId = await runningPod();
    const ok = await guardFor(podId, { GUARD_LEASE_SECONDS: '600', GUARD_STOP_AT: '4000000000' });
    assert.deepEqual(await leaseAnswer(ok), {
      guard: '3',
      lease_seconds: 600,
      stop_at: 4000000000,
      self_stop: 'ok',
    });
    assert.ok(
      ok.lines().includes(`guard self-stop check: GET pod ${podId}: ok (HTTP 200)`),
      ok.lines().join('\n'),
    );
    assert.equal(emu.pods.get(podId)?.status, 'RUNNING', 'the check only reads');

    const refused = await guardFor(podId, { RUNPOD_API_KEY: 'rp_wrong_pod_scoped_key_1234' });
    assert.deepEqual(await leaseAnswer(refused), {
      guard: '3',
      lease_seconds: null,
      stop_at: null,
      self_stop: 'refused',
    });
    const otherPod = await guardFor('nosuchpod123');
    assert.equal(
      (await leaseAnswer(otherPod)).self_stop,
      'refused',
      'a key that cannot see its own pod cannot stop it',
    );
    const missing = await guardFor(podId, { RUNPOD_API_KEY: '' });
    assert.equal((await leaseAnswer(missing)).self_stop, 'missing');
    const unreachable = await guardFor(podId, { GUARD_RUNPOD_API_URL: 'http://127.0.0.1:9' });
    assert.equal((await leaseAnswer(unreachable)).self_stop, 'unreachable');
    for (const g of [ok, refused, missing])
      assert.ok(!g.lines().join('\n').includes(emu.apiKey) && !g.lines().join('\n').includes('rp_wrong_pod'));
  });

  it("sends its own User-Agent, so a front that blocks urllib's lets it through; a Cloudflare block is told from a refused key", async () => {
    const podId = await runningPod();
    const front = await startCloudflareFront(
      emu.apiUrl,
      (ua) => ua === undefined || ua.startsWith('Python-urllib'),
    );
    const blockAll = await startCloudflareFront(emu.apiUrl, () => true);
    try {
      const blocked = await guardFor(podId, { GUARD_RUNPOD_API_URL: blockAll.url, GUARD_LEASE_SECONDS: '1' });
      assert.equal((await leaseAnswer(blocked)).self_stop, 'blocked');
      await until(() => blocked.lines().some((l) => l.includes('stopping pod')), 'the blocked attempt');
      assert.ok(
        blocked
          .lines()
          .includes(
            `guard self-stop: lease expired (nothing from the manager for 1 s); stopping pod ${podId}: HTTP 403 (blocked before the API (Cloudflare?))`,
          ) || blocked.lines().some((l) => /for 2 s\); stopping pod .*: HTTP 403 \(blocked/.test(l)),
        blocked.lines().join('\n'),
      );
      assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
      await blocked.close();

      const through = await guardFor(podId, { GUARD_RUNPOD_API_URL: front.url, GUARD_LEASE_SECONDS: '1' });
      await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the stop through the front');
      assert.deepEqual([...new Set(front.userAgents)], ['runpod-llm-guard/3']);
      await through.close();
    } finally {
      await front.close();
      await blockAll.close();
    }
  });

  it('takes 404 on its own pod as done: nothing left to stop, no retries', async () => {
    const podId = await runningPod();
    await api.deletePod(podId);
    const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '1' });
    await until(() => guard.lines().some((l) => l.includes('stopping pod')), 'the attempt');
    await sleep(1_500);
    const attempts = guard.lines().filter((l) => l.includes('stopping pod'));
    assert.deepEqual(
      attempts.map((l) => l.replace(/for \d s/, 'for N s')),
      [
        `guard self-stop: lease expired (nothing from the manager for N s); stopping pod ${podId}: HTTP 404 (pod gone: nothing to stop)`,
      ],
    );
  });

  describe('the lease across a restart of the container', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'guard-lease-file-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('writes the deadline (0600) and a restarted guard carries it on instead of granting a fresh lease', async () => {
      const podId = await runningPod();
      const file = join(dir, 'carry.lease');
      const first = await guardFor(podId, { GUARD_LEASE_SECONDS: '30', GUARD_LEASE_FILE: file });
      await until(() => {
        try {
          return readFileSync(file, 'utf8') !== '';
        } catch {
          return false;
        }
      }, 'the lease file');
      const written = JSON.parse(readFileSync(file, 'utf8')) as { deadline: number };
      assert.ok(Math.abs(written.deadline - (Date.now() / 1000 + 30)) <= 3, `deadline ${written.deadline}`);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      await first.close(); // the container restarts: a new process, the same disk

      writeFileSync(file, JSON.stringify({ deadline: Math.round(Date.now() / 1000) + 12 }));
      const second = await guardFor(podId, { GUARD_LEASE_SECONDS: '30', GUARD_LEASE_FILE: file });
      await until(() => second.lines().some((l) => l.includes('carried over')), 'the carry-over line');
      const left = Number(
        /: (\d+) s left$/.exec(second.lines().find((l) => l.includes('carried over')) ?? '')?.[1],
      );
      assert.ok(left >= 9 && left <= 12, `${left} s left, not a fresh 30 s lease`);
      // The manager's renewal still extends it: the restart does not, the manager does.
      assert.equal((await rawRequest(second.port, lease)).status, 200);
      await until(
        () =>
          (JSON.parse(readFileSync(file, 'utf8')) as { deadline: number }).deadline >= Date.now() / 1000 + 25,
        'the renewed deadline on disk',
      );
      assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
    });

    it('a guard restarted after the deadline stops its pod at once (a crash loop never renews its own lease)', async () => {
      const podId = await runningPod();
      const file = join(dir, 'expired.lease');
      writeFileSync(file, JSON.stringify({ deadline: Math.round(Date.now() / 1000) - 5 }));
      const guard = await guardFor(podId, { GUARD_LEASE_SECONDS: '600', GUARD_LEASE_FILE: file });
      await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the stop at start');
      assert.ok(
        guard
          .lines()
          .includes(
            'guard self-stop: the lease ran out before this start (container restarted); stopping now',
          ),
        guard.lines().join('\n'),
      );
      assert.ok(guard.lines().some((l) => l.endsWith(`stopping pod ${podId}: HTTP 200 (stopped)`)));
    });

    it('an unreadable lease file counts as run out, not as a fresh lease', async () => {
      const podId = await runningPod();
      const file = join(dir, 'garbage.lease');
      writeFileSync(file, 'not json');
      await guardFor(podId, { GUARD_LEASE_SECONDS: '600', GUARD_LEASE_FILE: file });
      await until(() => emu.pods.get(podId)?.status === 'EXITED', 'the stop at start');
    });
  });

  describe('guard.py --stop-self (the start script, when vLLM dies)', () => {
    /** Runs `guard.py --stop-self` (asynchronously: the emulator answers from this process). */
    const stopSelf = (
      env: Record<string, string>,
      args = ['vLLM exited with status 1'],
    ): Promise<{ status: number; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn('python3', [GUARD_PY, '--stop-self', ...args], {
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            GUARD_RUNPOD_API_URL: emu.apiUrl,
            RUNPOD_API_KEY: emu.apiKey,
            ...env,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('close', (code) => resolve({ status: code ?? -1, stderr }));
      });

    it('stops its own pod and exits 0; a pod already stopped or gone is done too', async () => {
      const podId = await runningPod();
      const run = await stopSelf({ RUNPOD_POD_ID: podId });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(
        run.stderr,
        `guard self-stop: vLLM exited with status 1; stopping pod ${podId}: HTTP 200 (stopped)\n`,
      );
      assert.equal(emu.pods.get(podId)?.status, 'EXITED');
      const again = await stopSelf({ RUNPOD_POD_ID: podId });
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stderr, /HTTP 409 \(not running\)\n$/);
    });

    it('exits 1 at once when the key is refused or the request is blocked, 3 without the pod env; never prints the key', async () => {
      const podId = await runningPod();
      const refused = await stopSelf({
        RUNPOD_POD_ID: podId,
        RUNPOD_API_KEY: 'rp_wrong_pod_scoped_key_1234',
      });
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /HTTP 401 \(key refused\)\n$/);
      assert.ok(!refused.stderr.includes('rp_wrong_pod'));
      const front = await startCloudflareFront(emu.apiUrl, () => true);
      try {
        const blocked = await stopSelf({ RUNPOD_POD_ID: podId, GUARD_RUNPOD_API_URL: front.url }, []);
        assert.equal(blocked.status, 1);
        assert.match(
          blocked.stderr,
          /^guard self-stop: asked to; stopping pod \w+: HTTP 403 \(blocked before the API \(Cloudflare\?\)\)\n$/,
        );
      } finally {
        await front.close();
      }
      assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
      const missing = await stopSelf({ RUNPOD_POD_ID: '' });
      assert.equal(missing.status, 3);
      assert.match(missing.stderr, /not in the pod env/);
    });
  });
});
