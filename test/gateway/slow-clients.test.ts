import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GATEWAY_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** Opens a raw connection, writes `head`, never finishes; resolves with what came back and when. */
function trickle(port: number, head: string): Promise<{ data: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => {
      data += d.toString();
    });
    socket.on('close', () => resolve({ data, ms: Date.now() - started }));
    socket.on('error', () => undefined);
    socket.write(head);
  });
}

describe('slow clients', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ config: { headers_timeout_ms: 500, request_timeout_ms: 1500 } });
  });
  after(() => gw.close());

  it('closes a connection whose headers never finish', async () => {
    const { data, ms } = await trickle(
      Number(new URL(gw.url).port),
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ',
    );
    assert.match(data, /^HTTP\/1\.1 408/);
    assert.ok(ms < 10_000, `closed after ${ms} ms`);
  });

  it('closes a connection whose body never finishes', async () => {
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${GATEWAY_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`;
    const { data, ms } = await trickle(Number(new URL(gw.url).port), head);
    assert.match(data, /^HTTP\/1\.1 408/);
    assert.ok(ms < 10_000, `closed after ${ms} ms`);
  });

  it('keeps serving others meanwhile', async () => {
    assert.equal((await gw.api('/v1/models')).status, 200);
  });
});
