import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isRunPodError, type RunPodError } from '../../src/runpod/errors.js';
import type { CreatePodRequest } from '../../src/runpod/schemas.js';
import { podRequest, rejection, startRig, type Rig } from '../emulator/setup.js';

type Fetch = typeof globalThis.fetch;

/** Wraps the real fetch: `decide` may answer instead, after or without forwarding. */
function interceptingFetch(
  decide: (method: string, path: string, forward: () => Promise<Response>) => Promise<Response>,
): Fetch & { calls: string[] } {
  const calls: string[] = [];
  const fn = (async (input: Parameters<Fetch>[0], init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    const path = new URL(input instanceof Request ? input.url : input).pathname;
    calls.push(`${method} ${path}`);
    return decide(method, path, () => globalThis.fetch(input, init));
  }) as Fetch & { calls: string[] };
  fn.calls = calls;
  return fn;
}

const problem = (status: number, detail: string, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify({ title: 'Error', status, detail }), {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });

function asError(err: unknown): RunPodError {
  assert.ok(isRunPodError(err), `expected a RunPodError, got ${String(err)}`);
  return err;
}

describe('RunPod client against the emulator', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });
  beforeEach(() => {
    rig.emulator.faults.reset();
    rig.sleeps.length = 0;
  });
  after(async () => {
    await rig.emulator.close();
  });

  it('creates, reads, lists, acts on and deletes a pod, parsing every answer', async () => {
    const req = podRequest();
    const pod = await rig.client.createPod(req);
    assert.equal(pod.name, req.name);
    assert.deepEqual(pod.gpu, { id: 'NVIDIA GeForce RTX 4090', count: 1 });
    assert.equal((await rig.client.getPod(pod.id)).id, pod.id);
    assert.ok((await rig.client.listPods()).some((p) => p.id === pod.id));
    assert.equal((await rig.client.podAction(pod.id, 'stop'))?.status, 'EXITED');
    await rig.client.deletePod(pod.id);
    assert.ok(!(await rig.client.listPods()).some((p) => p.id === pod.id));
    assert.deepEqual(rig.sleeps, []);
  });

  it('reads the GPU catalog with availability and pod billing', async () => {
    const plain = await rig.client.listGpuTypes();
    assert.ok(plain.every((g) => g.availability === undefined));
    const stock = await rig.client.listGpuTypes({ includeAvailability: true, cloud: 'SECURE', count: 1 });
    const h100 = stock.find((g) => g.id === 'NVIDIA H100 80GB HBM3');
    assert.equal(h100?.availability, 'LOW');
    assert.equal(h100?.memory, 80);
    const pod = await rig.client.createPod(podRequest());
    rig.clock.advance(1_800_000);
    const bill = await rig.client.podBilling(pod.id, { bucketSize: 'hour' });
    assert.ok(Math.abs(bill.metadata.totals.totalAmount - 0.345) < 1e-6);
  });

  it('refuses an empty API key before any call (RUNPOD_AUTH)', () => {
    assert.throws(
      () => rig.clientWith({ apiKey: '  ' }),
      (err: unknown) => asError(err).code === 'RUNPOD_AUTH',
    );
  });

  it('maps a rejected key to RUNPOD_AUTH with a hint, and never shows the key', async () => {
    const key = 'rpa_WRONGKEY_0123456789abcdef';
    const err = asError(await rejection(rig.clientWith({ apiKey: key }).listPods()));
    assert.equal(err.code, 'RUNPOD_AUTH');
    assert.equal(err.upstreamStatus, 401);
    assert.match(err.hint ?? '', /RUNPOD_API_KEY/);
    assert.ok(!`${err.message} ${err.hint} ${err.stack} ${JSON.stringify(err)}`.includes(key));
  });

  it('honours Retry-After on 429 and then succeeds', async () => {
    rig.emulator.faults.set({ rateLimit: { times: 2, retryAfterS: 3 } });
    await rig.client.listPods();
    assert.deepEqual(rig.sleeps, [3000, 3000]);
  });

  it('reads Retry-After given as an HTTP-date against the injected clock', async () => {
    let limited = true;
    const when = new Date(rig.clock.now() + 5_000).toUTCString();
    const fetch = interceptingFetch((_m, _p, forward) => {
      if (!limited) return forward();
      limited = false;
      return Promise.resolve(
        problem(429, 'rate limit exceeded for the minute window', { 'retry-after': when }),
      );
    });
    await rig.clientWith({ fetch }).listPods();
    assert.equal(rig.sleeps.length, 1);
    assert.ok(
      rig.sleeps[0] !== undefined && rig.sleeps[0] > 4_000 && rig.sleeps[0] <= 5_000,
      String(rig.sleeps[0]),
    );
  });

  it('gives up with RUNPOD_RATE_LIMITED when Retry-After exceeds the bound, without waiting', async () => {
    rig.emulator.faults.set({ rateLimit: { times: 1, retryAfterS: 3600 } });
    const err = asError(await rejection(rig.client.listPods()));
    assert.equal(err.code, 'RUNPOD_RATE_LIMITED');
    assert.equal(err.retryAfterMs, 3_600_000);
    assert.deepEqual(rig.sleeps, []);
  });

  it('retries a create refused with 429 (nothing was created) and makes one pod', async () => {
    rig.emulator.faults.set({ rateLimit: { times: 1, retryAfterS: 1 } });
    const req = podRequest();
    await rig.client.createPod(req);
    assert.deepEqual(rig.sleeps, [1000]);
    assert.equal(rig.emulator.pods.created().filter((p) => p.name === req.name).length, 1);
  });

  it('retries 5xx with bounded, growing backoff, then fails with RUNPOD_UNAVAILABLE', async () => {
    const fetch = interceptingFetch(async () => problem(503, 'upstream unavailable'));
    const err = asError(
      await rejection(
        rig.clientWith({ fetch, retries: 3, backoffBaseMs: 100, backoffMaxMs: 300 }).getPod('x'),
      ),
    );
    assert.equal(err.code, 'RUNPOD_UNAVAILABLE');
    assert.equal(fetch.calls.length, 4);
    // Equal jitter with random()=0.5: 3/4 of min(max, base·2^n).
    assert.deepEqual(rig.sleeps, [75, 150, 225]);
  });

  it('recovers when a 5xx is followed by a good answer', async () => {
    let failures = 1;
    const fetch = interceptingFetch((_m, _p, forward) =>
      failures-- > 0 ? Promise.resolve(problem(502, 'bad gateway')) : forward(),
    );
    assert.ok(Array.isArray(await rig.clientWith({ fetch }).listPods()));
    assert.equal(rig.sleeps.length, 1);
  });

  it('turns a timeout into RUNPOD_UNAVAILABLE after its retries', async () => {
    rig.emulator.faults.set({ slow: { delayMs: 400, times: null, match: 'GET /v2/catalog' } });
    const err = asError(await rejection(rig.clientWith({ timeoutMs: 60, retries: 1 }).listGpuTypes()));
    assert.equal(err.code, 'RUNPOD_UNAVAILABLE');
    assert.match(err.message, /no answer within 60 ms/);
    assert.equal(rig.sleeps.length, 1);
  });

  it('turns a refused connection into RUNPOD_UNAVAILABLE', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const err = asError(
      await rejection(rig.clientWith({ baseUrl: `http://127.0.0.1:${port}`, retries: 1 }).listPods()),
    );
    assert.equal(err.code, 'RUNPOD_UNAVAILABLE');
    assert.match(err.message, /ECONNREFUSED/);
  });

  it('maps no capacity to RUNPOD_NO_CAPACITY and does not retry it', async () => {
    rig.emulator.faults.set({ noCapacity: ['NVIDIA GeForce RTX 4090'] });
    const err = asError(await rejection(rig.client.createPod(podRequest())));
    assert.equal(err.code, 'RUNPOD_NO_CAPACITY');
    assert.equal(err.upstreamStatus, 400);
    assert.deepEqual(rig.sleeps, []);
  });

  it('maps a schema violation (422) to RUNPOD_BAD_REQUEST listing the violations', async () => {
    const bad = { ...podRequest(), dockerArgs: 'x' } as CreatePodRequest;
    const err = asError(await rejection(rig.client.createPod(bad)));
    assert.equal(err.code, 'RUNPOD_BAD_REQUEST');
    assert.equal(err.upstreamStatus, 422);
    assert.match(err.message, /additional properties 'dockerArgs' not allowed/);
  });

  it('maps a body that does not parse to RUNPOD_BAD_RESPONSE', async () => {
    const notAPod = interceptingFetch(
      async () => new Response('{"id":1,"status":"SLEEPING"}', { status: 200 }),
    );
    const err = asError(await rejection(rig.clientWith({ fetch: notAPod }).getPod('x')));
    assert.equal(err.code, 'RUNPOD_BAD_RESPONSE');
    assert.match(err.message, /id/);
    const html = interceptingFetch(async () => new Response('<html>captive portal</html>', { status: 200 }));
    assert.equal(
      asError(await rejection(rig.clientWith({ fetch: html }).listPods())).code,
      'RUNPOD_BAD_RESPONSE',
    );
  });

  it('redacts the key even when the server echoes it back', async () => {
    const key = rig.emulator.apiKey;
    const echo = interceptingFetch(async () =>
      problem(400, `bad request for token ${key} (Authorization: Bearer ${key})`),
    );
    const err = asError(await rejection(rig.clientWith({ fetch: echo }).listPods()));
    assert.equal(err.code, 'RUNPOD_BAD_REQUEST');
    assert.ok(!`${err.message} ${err.detail} ${JSON.stringify(err)}`.includes(key));
    assert.match(err.message, /\[redacted\]/);
  });
});

describe('RunPod client: create never makes a second pod', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });
  beforeEach(() => {
    rig.emulator.faults.reset();
    rig.sleeps.length = 0;
  });
  after(async () => {
    await rig.emulator.close();
  });

  const named = (name: string): number => rig.emulator.pods.created().filter((p) => p.name === name).length;

  it('adopts the pod a 500 created anyway, without creating again', async () => {
    rig.emulator.faults.set({ createFailure: { status: 500, createPod: true, times: 1 } });
    const fetch = interceptingFetch((_m, _p, forward) => forward());
    const req = podRequest();
    const outcome = await rig.clientWith({ fetch }).createPodDetailed(req);
    assert.equal(outcome.adopted, true);
    assert.equal(outcome.pod.name, req.name);
    assert.equal(named(req.name), 1);
    assert.deepEqual(fetch.calls, ['POST /v2/pods', 'GET /v2/pods']);
  });

  it('creates again when the failed create left no pod, and makes exactly one', async () => {
    rig.emulator.faults.set({ createFailure: { status: 503, createPod: false, times: 1 } });
    const req = podRequest();
    const outcome = await rig.client.createPodDetailed(req);
    assert.equal(outcome.adopted, false);
    assert.equal(outcome.attempts, 2);
    assert.equal(named(req.name), 1);
  });

  it('adopts the pod when the create timed out but RunPod created it', async () => {
    rig.emulator.faults.set({ slow: { delayMs: 400, times: 1, match: 'POST /v2/pods' } });
    const req = podRequest();
    const outcome = await rig.clientWith({ timeoutMs: 80 }).createPodDetailed(req);
    assert.equal(outcome.adopted, true);
    assert.equal(named(req.name), 1);
  });

  it('stops after a bounded number of creates when every create fails', async () => {
    rig.emulator.faults.set({ createFailure: { status: 500, createPod: false, times: 10 } });
    const fetch = interceptingFetch((_m, _p, forward) => forward());
    const req = podRequest();
    const err = asError(await rejection(rig.clientWith({ fetch, retries: 2 }).createPod(req)));
    assert.equal(err.code, 'RUNPOD_UNAVAILABLE');
    assert.equal(fetch.calls.filter((c) => c === 'POST /v2/pods').length, 3);
    assert.equal(named(req.name), 0);
  });

  it('does not create again when the pod list cannot be read after a failed create', async () => {
    const fetch = interceptingFetch(async (method, path, forward) => {
      if (method === 'POST') {
        await forward();
        return problem(500, 'internal server error');
      }
      return path === '/v2/pods' ? problem(503, 'unavailable') : forward();
    });
    const req = podRequest();
    const err = asError(await rejection(rig.clientWith({ fetch, retries: 1 }).createPod(req)));
    assert.equal(err.code, 'RUNPOD_UNAVAILABLE');
    assert.match(err.hint ?? '', new RegExp(req.name));
    assert.equal(fetch.calls.filter((c) => c === 'POST /v2/pods').length, 1);
    assert.equal(named(req.name), 1);
  });
});

describe('RunPod client: actions whose first attempt may have been applied', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig.emulator.close();
  });

  /** Applies the first action call on the emulator, then answers 502 as a flaky edge would. */
  const appliedThen502 = (): Fetch & { calls: string[] } => {
    let first = true;
    return interceptingFetch(async (method, path, forward) => {
      if (method === 'POST' && path.endsWith('/action') && first) {
        first = false;
        await forward();
        return problem(502, 'bad gateway');
      }
      return forward();
    });
  };

  it('terminate: a retry that finds the pod gone counts as done', async () => {
    const pod = await rig.client.createPod(podRequest());
    assert.equal(await rig.clientWith({ fetch: appliedThen502() }).podAction(pod.id, 'terminate'), null);
    assert.equal(rig.emulator.pods.get(pod.id), undefined);
  });

  it('stop: a retry answered 409 returns the pod, already EXITED', async () => {
    const pod = await rig.client.createPod(podRequest());
    const result = await rig.clientWith({ fetch: appliedThen502() }).podAction(pod.id, 'stop');
    assert.equal(result?.status, 'EXITED');
  });
});
