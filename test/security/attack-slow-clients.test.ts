import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  assertLogsClean,
  assertRawRefusal,
  assertServing,
  assertStillForwarding,
  AUTH,
  marker,
  rawRequest,
  securityEvents,
} from './attack-helpers.js';

/**
 * Attack battery, slow clients (SECURITY.md "Attack battery"; settings headers_timeout_ms and
 * request_timeout_ms): slowloris-style headers, a body that never completes, a trickle that
 * keeps the connection busy, and a crowd of silent connections. Timeouts are shortened here;
 * the bounds asserted are generous because the machine is shared.
 */
describe('attack battery: slow clients', () => {
  let gw: TestGateway;
  let port: number;
  const prompt = marker('slow');
  before(async () => {
    gw = await startTestGateway({
      config: { headers_timeout_ms: 600, request_timeout_ms: 1500, rate_limit_requests: 100_000 },
    });
    port = Number(new URL(gw.url).port);
  });
  after(async () => {
    await assertStillForwarding(gw);
    assertLogsClean(gw, [prompt]);
    await gw.close();
  });

  it('headers that never finish → 408 envelope and the connection closed', async () => {
    const res = await rawRequest(port, `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n${AUTH}X-Slow: `, {
      timeoutMs: 10_000,
    });
    assertRawRefusal(res, 408, 'request_timeout');
    assert.ok(res.closed && res.ms < 6000, `closed after ${res.ms} ms`);
    assert.ok(securityEvents(gw).some((e) => e.event === 'request_timeout'));
    await assertServing(gw);
  });

  it('headers sent one byte every 150 ms (never idle, never done) → 408 within the headers timeout', async () => {
    const head = `GET /v1/models HTTP/1.1\r\nHost: gw\r\n${AUTH}X-Trickle: ${'a'.repeat(200)}`;
    const res = await rawRequest(port, [...head], { gapMs: 150, timeoutMs: 10_000 });
    assertRawRefusal(res, 408, 'request_timeout');
    assert.ok(res.ms < 6000, `closed after ${res.ms} ms`);
  });

  it('a body that never completes → 408 envelope within the request timeout', async () => {
    const res = await rawRequest(
      port,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":"test-model","messages":[{"role":"user","content":"${prompt}`,
      { timeoutMs: 10_000 },
    );
    assertRawRefusal(res, 408, 'request_timeout');
    assert.ok(res.closed && res.ms < 8000, `closed after ${res.ms} ms`);
    assert.equal(
      gw.pod!.requests.filter((r) => r.body.includes(prompt)).length,
      0,
      'the partial body never reached the upstream',
    );
  });

  it('200 silent connections neither block other clients nor stay open', async () => {
    const sockets: Socket[] = [];
    const closed: Array<Promise<number>> = [];
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.resume(); // flowing, so the server's 408 and FIN are read and 'close' fires
      sockets.push(socket);
      closed.push(new Promise((resolve) => socket.on('close', () => resolve(Date.now() - started))));
    }
    await assertStillForwarding(gw);
    const times = await Promise.race([
      Promise.all(closed),
      new Promise<number[]>((resolve) => setTimeout(() => resolve([]), 15_000)),
    ]);
    for (const s of sockets) s.destroy();
    assert.equal(times.length, 200, 'every silent connection was closed by the server');
    assert.ok(Math.max(...times) < 12_000, `slowest closed after ${Math.max(...times)} ms`);
  });

  it('a silent connection to the TLS gateway (no handshake) is closed within the headers timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slow-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
      ],
      { cwd: dir, stdio: 'pipe' },
    );
    const tls = await startTestGateway({
      config: { headers_timeout_ms: 600 },
      tls: { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') },
    });
    rmSync(dir, { recursive: true, force: true });
    try {
      const res = await rawRequest(Number(new URL(tls.url).port), [], { timeoutMs: 20_000 });
      assert.ok(res.closed && res.ms < 10_000, `closed: ${res.closed} after ${res.ms} ms`);
    } finally {
      await tls.close();
    }
  });
});
