import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GUARD_PY, httpRequest, rawRequest, type RunningGuard, startGuard } from './run-guard.js';

const KEY = 'vk_limits_test_0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };

/** A loopback port nothing listens on: vLLM still loading. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('guard limits, with vLLM not listening', () => {
  let guard: RunningGuard;

  before(async () => {
    guard = await startGuard({
      GUARD_UPSTREAM: `http://127.0.0.1:${await closedPort()}`,
      GUARD_API_KEY: KEY,
      GUARD_MAX_CONNECTIONS: '2',
      GUARD_MAX_BODY: '2048',
    });
  });
  after(() => guard.close());

  it("answers /health 502 while vLLM does not listen (as RunPod's proxy would), and /v1 502 in JSON", async () => {
    const health = await rawRequest(guard.port, httpRequest('GET', '/health'));
    assert.equal(health.status, 502);
    assert.equal(health.body, '');
    const models = await rawRequest(guard.port, httpRequest('GET', '/v1/models', AUTH));
    assert.equal(models.status, 502);
    assert.deepEqual(JSON.parse(models.body), { error: 'Bad Gateway' });
  });

  it('applies GUARD_MAX_BODY: the limit itself passes the gate, one byte more is 413', async () => {
    const at = 'x'.repeat(2048);
    const passed = await rawRequest(
      guard.port,
      httpRequest('POST', '/v1/completions', { ...AUTH, 'content-length': '2048' }, at),
    );
    assert.equal(passed.status, 502, 'read and forwarded (vLLM is down, hence 502)');
    const over = await rawRequest(
      guard.port,
      httpRequest('POST', '/v1/completions', { ...AUTH, 'content-length': '2049' }, `${at}x`),
    );
    assert.equal(over.status, 413);
    assert.deepEqual(JSON.parse(over.body), { error: 'Payload Too Large' });
  });

  it('answers 503 beyond GUARD_MAX_CONNECTIONS and serves again once connections close', async () => {
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = connect(guard.port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      held.push(socket);
    }
    await new Promise((r) => setTimeout(r, 100)); // let the guard accept both
    const busy = await rawRequest(guard.port, httpRequest('GET', '/health'));
    assert.equal(busy.status, 503);
    assert.deepEqual(JSON.parse(busy.body), { error: 'Service Unavailable' });
    for (const socket of held) socket.destroy();
    let status = 0;
    for (let i = 0; i < 50 && status !== 502; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = (await rawRequest(guard.port, httpRequest('GET', '/health'))).status;
    }
    assert.equal(status, 502, 'a freed slot serves /health again');
  });

  it("answers http.server's own refusals in JSON without echoing the request", async () => {
    const res = await rawRequest(guard.port, 'GET /v1/models <script> HTTP/1.1\r\nhost: pod\r\n\r\n');
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.body), { error: 'Bad Request' });
    assert.ok(!res.raw.includes('script'));
  });
});

describe('guard configuration', () => {
  it('refuses to start without a key or with a bad number, exit code 2', () => {
    for (const env of [
      {},
      { GUARD_API_KEY: '' },
      { GUARD_API_KEY: KEY, GUARD_MAX_BODY: 'lots' },
      { GUARD_API_KEY: KEY, GUARD_UPSTREAM: 'https://x' },
    ]) {
      const run = spawnSync('python3', [GUARD_PY], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(run.status, 2, `${JSON.stringify(env)}: ${run.stderr}`);
      assert.match(run.stderr, /^guard: GUARD_/);
    }
  });
});
