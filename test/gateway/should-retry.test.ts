import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import OpenAI from 'openai';
import { shouldRetryHeader } from '../../src/gateway/errors.js';
import { GATEWAY_KEY, MODEL, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** The official SDK (default: two retries) against the gateway, counting every request it makes. */
function countingClient(gw: TestGateway, apiKey = GATEWAY_KEY): { client: OpenAI; calls: () => number } {
  let calls = 0;
  const client = new OpenAI({
    baseURL: gw.baseUrl,
    apiKey,
    maxRetries: 2,
    timeout: 30_000,
    fetch: (input, init) => {
      calls++;
      return fetch(input, init);
    },
  });
  return { client, calls: () => calls };
}

async function failure(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await promise.then(
    () => assert.fail('expected an error'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, String(err));
  return err;
}

describe('x-should-retry: the official openai SDK makes one request for errors a retry cannot fix', () => {
  const gateways: TestGateway[] = [];
  after(async () => {
    for (const gw of gateways) await gw.close();
  });
  async function gateway(options: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
    const gw = await startTestGateway(options);
    gateways.push(gw);
    return gw;
  }

  it('validation error (400): one request, nothing reaches the pod', async () => {
    const gw = await gateway();
    const { client, calls } = countingClient(gw);
    const err = await failure(client.chat.completions.create({ model: MODEL, messages: [] }));
    assert.equal(err.status, 400);
    assert.equal(err.headers?.get('x-should-retry'), 'false');
    assert.equal(calls(), 1);
    assert.equal(gw.pod?.requests.length, 0);
  });

  it('auth failure (401): one request', async () => {
    const gw = await gateway();
    const { client, calls } = countingClient(gw, 'not-the-gateway-key-000000000000');
    const err = await failure(client.models.list());
    assert.equal(err.status, 401);
    assert.equal(err.headers?.get('x-should-retry'), 'false');
    assert.equal(calls(), 1);
  });

  it('request too large (413): one request', async () => {
    const gw = await gateway({ config: { max_request_size: 4_096 } });
    const { client, calls } = countingClient(gw);
    const err = await failure(
      client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'x'.repeat(8_000) }],
      }),
    );
    assert.equal(err.status, 413);
    assert.equal(err.headers?.get('x-should-retry'), 'false');
    assert.equal(calls(), 1);
  });

  it('context too long, answered by vLLM (400, passed through): one request, one generation attempt on the pod', async () => {
    const gw = await gateway();
    gw.pod?.setFault({
      kind: 'status',
      status: 400,
      body: JSON.stringify({
        object: 'error',
        message: "This model's maximum context length is 8192 tokens. However, you requested 12000 tokens.",
        type: 'BadRequestError',
        param: null,
        code: 400,
      }),
    });
    const { client, calls } = countingClient(gw);
    const err = await failure(
      client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'long' }] }),
    );
    assert.equal(err.status, 400);
    assert.match(err.message, /maximum context length/);
    assert.equal(err.headers?.get('x-should-retry'), 'false');
    assert.equal(calls(), 1);
    assert.equal(gw.pod?.requests.length, 1);
  });

  it('unknown model, answered by vLLM (404): one request', async () => {
    const gw = await gateway();
    const { client, calls } = countingClient(gw);
    const err = await failure(
      client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
    );
    assert.equal(err.status, 404);
    assert.equal(err.headers?.get('x-should-retry'), 'false');
    assert.equal(calls(), 1);
    assert.equal(gw.pod?.requests.length, 1);
  });

  it('rate limited (429 with Retry-After): x-should-retry true, and the SDK retries after the wait', async () => {
    const gw = await gateway({ config: { key_rate_limit_requests: 1, rate_limit_window: 1 } });
    const { client, calls } = countingClient(gw);
    await client.models.list();
    assert.equal(calls(), 1);
    const raw = await gw.api('/v1/models');
    assert.equal(raw.status, 429);
    assert.equal(raw.headers.get('x-should-retry'), 'true');
    assert.ok(Number(raw.headers.get('retry-after')) >= 1);
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [MODEL],
    );
    assert.ok(calls() >= 3, `the SDK retried the 429 (${calls()} requests in all)`);
  });
});

describe('the x-should-retry table', () => {
  it('says false for what cannot succeed, true for what waiting fixes, nothing for the rest', () => {
    for (const [status, code] of [
      [400, 'invalid_request'],
      [400, 'context_length_exceeded'],
      [401, 'invalid_api_key'],
      [403, null],
      [404, 'unknown_url'],
      [413, 'request_too_large'],
      [504, 'upstream_proxy_timeout'],
      [502, 'upstream_auth_failed'],
    ] as const) {
      assert.equal(shouldRetryHeader(status, code), 'false', `${status} ${code}`);
    }
    for (const [status, code] of [
      [503, 'model_waking'],
      [429, 'rate_limit_exceeded'],
      [429, null],
      [503, 'rate_limiter_unavailable'],
    ] as const) {
      assert.equal(shouldRetryHeader(status, code), 'true', `${status} ${code}`);
    }
    for (const [status, code] of [
      [502, 'upstream_unavailable'],
      [504, 'upstream_timeout'],
      [500, 'internal_error'],
      [503, 'no_upstream'],
    ] as const) {
      assert.equal(shouldRetryHeader(status, code), undefined, `${status} ${code}`);
    }
  });
});
