import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { checkPodOpenRoutes } from '../../src/security/pod-checks.js';
import { clearRoutes, openState, upsertRoute } from '../../src/state/index.js';
import { type RunningGuard, startGuard } from '../guard/run-guard.js';

const KEY = 'vk_pod_check_0123456789abcdef';
const MODEL = 'checked-model';

/**
 * SECURITY.md "Threat model — the pod URL" and "Security report": the report probes each ready
 * pod from outside. A real guard (python3 on src/guard/guard.py) in front of the vLLM stand-in
 * passes; the stand-in alone (an unguarded pod, vLLM's open routes) fails.
 */
describe("security report: the pod URL refuses vLLM's open routes", () => {
  let home: string;
  let pod: VllmStandin;
  let guard: RunningGuard;
  let silent: Server;
  let silentUrl: string;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'pod-check-home-'));
    pod = await startVllmStandin({ model: MODEL, apiKey: KEY });
    guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: KEY });
    // Accepts connections and never answers: a pod that hangs.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  after(async () => {
    silent.closeAllConnections();
    silent.close();
    await guard.close();
    await pod.close();
    rmSync(home, { recursive: true, force: true });
  });

  function setRoutes(routes: { podId: string | null; url: string; ready?: boolean }[]): void {
    const state = openState({ home });
    try {
      clearRoutes(state);
      for (const r of routes)
        upsertRoute(state, {
          routeId: r.podId ?? 'fixed',
          podId: r.podId,
          baseUrl: `${r.url}/v1`,
          apiKey: KEY,
          model: MODEL,
          ready: r.ready ?? true,
        });
    } finally {
      state.close();
    }
  }

  it('skips when there is no state, or no ready pod', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'pod-check-empty-'));
    try {
      const none = await checkPodOpenRoutes(empty);
      assert.equal(none.status, 'skip');
      assert.match(none.detail, /no pod running/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    setRoutes([
      { podId: 'pod-starting', url: pod.url, ready: false },
      { podId: null, url: pod.url },
    ]);
    assert.equal((await checkPodOpenRoutes(home)).status, 'skip');
  });

  it('passes for a guarded pod: 404 on /invocations and /tokenize, and vLLM never sees the probes', async () => {
    setRoutes([{ podId: 'guarded1', url: guard.url }]);
    const seen = pod.requests.length;
    const item = await checkPodOpenRoutes(home);
    assert.equal(item.status, 'pass', item.detail);
    assert.equal(item.id, 'pod.closed_routes');
    assert.match(item.detail, /1 running pod\(s\) refuse \/invocations and \/tokenize/);
    assert.equal(pod.requests.length, seen);
  });

  it('fails for an unguarded pod, naming the pod and the open routes, and says how to fix it', async () => {
    setRoutes([
      { podId: 'guarded1', url: guard.url },
      { podId: 'open1', url: pod.url },
    ]);
    const item = await checkPodOpenRoutes(home);
    assert.equal(item.status, 'fail');
    assert.match(item.detail, /open1 answers 200 on \/invocations/);
    assert.match(item.detail, /open1 answers 200 on \/tokenize/);
    assert.doesNotMatch(item.detail, /guarded1/);
    assert.match(item.fix ?? '', /without --unguarded/);
    // The probes carried no key: it is a stranger's view.
    const probes = pod.requests.filter((r) => r.path === '/invocations' || r.path === '/tokenize');
    assert.ok(probes.length >= 2);
    assert.ok(probes.every((r) => r.headers.authorization === undefined));
  });

  it('is unavailable, never a pass, when a pod cannot be reached or does not answer', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    setRoutes([
      { podId: 'gone1', url: `http://127.0.0.1:${closed}` },
      { podId: 'hung1', url: silentUrl },
    ]);
    const item = await checkPodOpenRoutes(home, { timeoutMs: 300 });
    assert.equal(item.status, 'unavailable');
    assert.match(item.detail, /gone1 \/invocations: ECONNREFUSED/);
    assert.match(item.detail, /hung1 \/tokenize: no answer within 300 ms/);
  });

  it('the key never appears in what the check reports', async () => {
    setRoutes([{ podId: 'open1', url: pod.url }]);
    const item = await checkPodOpenRoutes(home);
    assert.doesNotMatch(JSON.stringify(item), new RegExp(KEY));
  });
});
