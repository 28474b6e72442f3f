import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NO_CAPACITY_DETAIL } from '../../src/emulator/faults.js';
import { loadRunPodSpec, type RunPodSpec } from '../helpers/openapi.js';
import { podRequest, SCHEDULE, startRig, type Rig } from './setup.js';

interface Answer {
  status: number;
  contentType: string | null;
  headers: Headers;
  body: unknown;
}

describe('emulator REST v2 answers match openapi-v2.json', () => {
  let rig: Rig;
  let spec: RunPodSpec;

  before(async () => {
    spec = loadRunPodSpec();
    rig = await startRig();
  });
  after(async () => {
    await rig.emulator.close();
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
    key: string | null = rig.emulator.apiKey,
  ): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (key !== null) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await fetch(rig.emulator.apiUrl + path, init);
    const text = await res.text();
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      headers: res.headers,
      body: text === '' ? undefined : JSON.parse(text),
    };
  }

  /** Calls, then asserts the answer has the expected status and is valid for the spec's operation. */
  async function valid(
    method: string,
    template: string,
    path: string,
    status: number,
    body?: unknown,
    key?: string | null,
  ): Promise<Answer> {
    const answer = await call(method, path, body, key);
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    assert.deepEqual(
      spec.validateResponse(method, template, answer.status, answer.contentType, answer.body),
      [],
    );
    return answer;
  }

  async function createdPodId(): Promise<string> {
    const answer = await valid('POST', '/v2/pods', '/v2/pods', 201, podRequest());
    return (answer.body as { id: string }).id;
  }

  it('our create body is a valid CreatePodRequest', () => {
    assert.deepEqual(spec.validateSchema('CreatePodRequest', podRequest()), []);
  });

  it('create answers 201 with a spec-valid Pod, PROVISIONING, runtime null, billed at the GPU price', async () => {
    const answer = await valid(
      'POST',
      '/v2/pods',
      '/v2/pods',
      201,
      podRequest({ gpu: { id: 'NVIDIA GeForce RTX 4090', count: 2 } }),
    );
    const pod = answer.body as { status: string; runtime: unknown; cost: number; actions: string[] };
    assert.equal(pod.status, 'PROVISIONING');
    assert.equal(pod.runtime, null);
    assert.equal(pod.cost, 1.38);
    assert.deepEqual(pod.actions, ['stop', 'terminate']);
  });

  it('get and list answer spec-valid bodies in every status, list wrapped in {"pods":[...]}', async () => {
    const id = await createdPodId();
    await valid('GET', '/v2/pods/{id}', `/v2/pods/${id}`, 200);
    rig.clock.advance(SCHEDULE.provisioningMs);
    await valid('GET', '/v2/pods/{id}', `/v2/pods/${id}`, 200);
    rig.clock.advance(SCHEDULE.startingMs);
    const running = await valid('GET', '/v2/pods/{id}', `/v2/pods/${id}`, 200);
    assert.equal((running.body as { status: string }).status, 'RUNNING');
    const list = await valid('GET', '/v2/pods', '/v2/pods', 200);
    assert.ok((list.body as { pods: Array<{ id: string }> }).pods.some((p) => p.id === id));
    await valid('POST', '/v2/pods/{id}/action', `/v2/pods/${id}/action`, 200, { action: 'stop' });
    const exited = await valid('GET', '/v2/pods/{id}', `/v2/pods/${id}`, 200);
    assert.equal((exited.body as { cost: number }).cost, 0);
  });

  it('terminate answers 204 without a body and DELETE answers 204; both pods are gone from the list', async () => {
    const a = await createdPodId();
    const b = await createdPodId();
    await valid('POST', '/v2/pods/{id}/action', `/v2/pods/${a}/action`, 204, { action: 'terminate' });
    await valid('DELETE', '/v2/pods/{id}', `/v2/pods/${b}`, 204);
    const list = (await call('GET', '/v2/pods')).body as { pods: Array<{ id: string }> };
    assert.ok(!list.pods.some((p) => p.id === a || p.id === b));
    await valid('GET', '/v2/pods/{id}', `/v2/pods/${a}`, 404);
  });

  it('errors are problem+json: 401 without or with a wrong key, 404, 409, 422, 400 no capacity', async () => {
    const missing = await valid('GET', '/v2/pods', '/v2/pods', 401, undefined, null);
    assert.equal((missing.body as { detail: string }).detail, 'missing bearer token');
    await valid('GET', '/v2/pods', '/v2/pods', 401, undefined, 'wrong-key');
    await valid('GET', '/v2/pods/{id}', '/v2/pods/doesnotexist', 404);
    const id = await createdPodId();
    const conflict = await valid('POST', '/v2/pods/{id}/action', `/v2/pods/${id}/action`, 409, {
      action: 'start',
    });
    assert.match((conflict.body as { detail: string }).detail, /not valid for a pod in status PROVISIONING/);
    const invalid = await valid('POST', '/v2/pods', '/v2/pods', 422, { ...podRequest(), bogus: 1, disk: 0 });
    const errors = (invalid.body as { errors: string[] }).errors;
    assert.ok(errors.includes("$: additional properties 'bogus' not allowed"), errors.join('\n'));
    assert.ok(
      errors.some((e) => e.startsWith('$.disk:')),
      errors.join('\n'),
    );
    await valid('POST', '/v2/pods/{id}/action', `/v2/pods/${id}/action`, 422, { action: 'pause' });
    rig.emulator.faults.set({ noCapacity: ['NVIDIA L40S'] });
    const full = await valid(
      'POST',
      '/v2/pods',
      '/v2/pods',
      400,
      podRequest({ gpu: { id: 'NVIDIA L40S', count: 1 } }),
    );
    assert.equal((full.body as { detail: string }).detail, NO_CAPACITY_DETAIL);
    rig.emulator.faults.reset();
  });

  it('a sold-out cloud answers the no-capacity 400 even without a fault (stock NONE)', async () => {
    const answer = await valid(
      'POST',
      '/v2/pods',
      '/v2/pods',
      400,
      podRequest({ gpu: { id: 'NVIDIA L40S', count: 1 }, cloud: 'COMMUNITY' }),
    );
    assert.equal((answer.body as { detail: string }).detail, NO_CAPACITY_DETAIL);
  });

  it('429 carries Retry-After and is spec-valid; RateLimit headers accompany authenticated answers', async () => {
    const ok = await call('GET', '/v2/pods');
    assert.match(
      ok.headers.get('ratelimit') ?? '',
      /^"minute";r=\d+;t=\d+, "hour";r=\d+;t=\d+, "day";r=\d+;t=\d+$/,
    );
    assert.equal(
      ok.headers.get('ratelimit-policy'),
      '"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400',
    );
    rig.emulator.faults.set({ rateLimit: { times: 1, retryAfterS: 7 } });
    const limited = await valid('GET', '/v2/pods', '/v2/pods', 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    await valid('GET', '/v2/pods', '/v2/pods', 200);
  });

  it('the catalog is spec-valid with and without availability, which needs product', async () => {
    const plain = await valid('GET', '/v2/catalog/gpus', '/v2/catalog/gpus', 200);
    const gpus = (plain.body as { gpus: Array<Record<string, unknown>> }).gpus;
    assert.ok(gpus.length >= 5);
    assert.ok(gpus.every((g) => g.availability === undefined));
    const withStock = await valid(
      'GET',
      '/v2/catalog/gpus',
      '/v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=COMMUNITY&count=1',
      200,
    );
    const l40s = (withStock.body as { gpus: Array<Record<string, unknown>> }).gpus.find(
      (g) => g.id === 'NVIDIA L40S',
    );
    assert.equal(l40s?.availability, 'NONE');
    assert.equal(l40s?.dataCenters, undefined);
    await valid('GET', '/v2/catalog/gpus', '/v2/catalog/gpus?include=AVAILABILITY', 400);
    await valid('GET', '/v2/catalog/gpus', '/v2/catalog/gpus?cloud=SECURE', 400);
  });

  it('pod billing is spec-valid and bills the running time at the pod cost', async () => {
    const id = await createdPodId();
    rig.clock.advance(3_600_000);
    const answer = await valid(
      'GET',
      '/v2/billing/pods',
      `/v2/billing/pods?podId=${id}&bucketSize=hour`,
      200,
    );
    const report = answer.body as {
      records: Array<{ podId: string; totalAmount: number }>;
      metadata: { totals: { totalAmount: number } };
    };
    assert.ok(report.records.every((r) => r.podId === id));
    assert.ok(
      Math.abs(report.metadata.totals.totalAmount - 0.69) < 1e-6,
      String(report.metadata.totals.totalAmount),
    );
    await valid('GET', '/v2/billing/pods', '/v2/billing/pods', 200);
  });
});
