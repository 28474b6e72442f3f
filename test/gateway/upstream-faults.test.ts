import assert from 'node:assert/strict';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import {
  connect as createTcpConnection,
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
} from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import { chatBody, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

type Envelope = { error: { message: string; type: string; code: string } };

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('upstream failures', () => {
  const cleanup: Array<() => unknown> = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });
  async function gateway(options: Parameters<typeof startTestGateway>[0]): Promise<TestGateway> {
    const gw = await startTestGateway(options);
    cleanup.push(() => gw.close());
    return gw;
  }

  it('upstream down → 502 upstream_unavailable, logged as upstream_error', async () => {
    const gw = await gateway({ pod: false, routes: staticRouteSource('http://127.0.0.1:1/v1', POD_KEY) });
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as Envelope).error.code, 'upstream_unavailable');
    const event = gw.logs.lines().find((l) => l.event === 'upstream_error');
    assert.equal(event?.upstream, 'connect_failed');
  });

  it('slow upstream → 504 upstream_timeout after the first-byte timeout', async () => {
    const gw = await gateway({ config: { upstream: { first_byte_timeout_ms: 200 } } });
    gw.pod!.setFault({ kind: 'hang' });
    const started = Date.now();
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() });
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as Envelope).error.code, 'upstream_timeout');
    assert.ok(Date.now() - started < 5000);
  });

  it('a client that goes away aborts the upstream request', async () => {
    const gw = await gateway({ pod: { chunkDelayMs: 50, chunks: 200 } });
    const controller = new AbortController();
    const res = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: chatBody('long', { stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await until(() => gw.pod!.stats.aborted === 1);
    assert.equal(gw.pod!.stats.inFlight, 0);
    await until(() => gw.logs.lines().some((l) => l.msg === 'request' && l.status === 499));
  });

  it('a client that goes away before the upstream answers aborts it too', async () => {
    const gw = await gateway({});
    gw.pod!.setFault({ kind: 'delay', ms: 2000 });
    const controller = new AbortController();
    const pending = gw
      .api('/v1/chat/completions', { method: 'POST', json: chatBody(), signal: controller.signal })
      .catch(() => undefined);
    await until(() => gw.pod!.requests.some((r) => r.path === '/v1/chat/completions'));
    controller.abort();
    await pending;
    await until(() => gw.pod!.stats.aborted === 1);
  });

  it('upstream dying mid-stream ends the stream cleanly with an OpenAI error event', async () => {
    const gw = await gateway({});
    gw.pod!.setFault({ kind: 'die_mid_stream', afterChunks: 3 });
    const res = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: chatBody('x', { stream: true }),
    });
    assert.equal(res.status, 200);
    const text = await res.text(); // resolves: the stream ended, it did not hang
    const events = text.split('\n\n').filter(Boolean);
    assert.equal(events.length, 4);
    const last = JSON.parse(events[3]!.replace(/^data: /, '')) as Envelope;
    assert.equal(last.error.code, 'upstream_unavailable');
    assert.ok(!text.includes('[DONE]'));
  });

  it('upstream stalling mid-stream ends the stream after the idle timeout', async () => {
    const gw = await gateway({ config: { upstream: { idle_timeout_ms: 300 } } });
    gw.pod!.setFault({ kind: 'stall_mid_stream', afterChunks: 2 });
    const res = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: chatBody('x', { stream: true }),
    });
    const text = await res.text();
    assert.match(text, /"code":"upstream_timeout"/);
  });

  it('an upstream error mid-stream starts its event on an event boundary', async () => {
    const tcp: TcpServer = createTcpServer((socket) => {
      socket.once('data', () => {
        socket.write(
          'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n',
        );
        const partial = 'data: {"choices":[{"delta":{"content":"hal';
        socket.write(`${partial.length.toString(16)}\r\n${partial}\r\n`);
        setTimeout(() => socket.destroy(), 20);
      });
    });
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => tcp.close(resolve)));
    const gw = await gateway({
      pod: false,
      routes: staticRouteSource(`http://127.0.0.1:${(tcp.address() as AddressInfo).port}/v1`, POD_KEY),
    });
    const text = await (
      await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('x', { stream: true }) })
    ).text();
    assert.match(text, /hal\n\ndata: \{"error":/);
  });

  it('strips hop-by-hop headers in both directions and replaces Authorization', async () => {
    let seen: IncomingMessage['headers'] = {};
    const { server, url } = await listen((req, res) => {
      seen = req.headers;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, {
          'content-type': 'application/json',
          connection: 'x-secret-hop, keep-alive',
          'x-secret-hop': '1',
          'keep-alive': 'timeout=5',
          'proxy-authenticate': 'Basic',
          'x-ratelimit-remaining': '999',
          'set-cookie': 'a=b',
          location: 'http://evil/',
        });
        res.end('{"ok":true}');
      });
    });
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    const gw = await gateway({ pod: false, routes: staticRouteSource(`${url}/v1`, 'upstream-key-123') });
    // node:http, not fetch: fetch refuses to send hop-by-hop headers at all.
    const body = JSON.stringify(chatBody());
    const res = await new Promise<{ status: number; headers: IncomingMessage['headers']; text: string }>(
      (resolve, reject) => {
        const req = httpRequest(
          `${gw.url}/v1/chat/completions`,
          {
            method: 'POST',
            headers: {
              authorization: 'Bearer gw_test_key_5f1c9a7e3b2d4c6e8a0b',
              'content-type': 'application/json',
              connection: 'x-client-hop',
              'x-client-hop': '1',
              te: 'trailers',
              'proxy-authorization': 'Basic abc',
              cookie: 'session=1',
              'content-length': Buffer.byteLength(body),
            },
          },
          (r) => {
            let text = '';
            r.on('data', (d) => {
              text += d;
            });
            r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      },
    );
    assert.equal(res.status, 200);
    assert.equal(seen.authorization, 'Bearer upstream-key-123');
    for (const name of ['x-client-hop', 'te', 'proxy-authorization', 'cookie'])
      assert.equal(seen[name], undefined, name);
    for (const name of ['x-secret-hop', 'proxy-authenticate', 'set-cookie', 'location'])
      assert.equal(res.headers[name], undefined, name);
    assert.notEqual(
      res.headers['x-ratelimit-remaining'],
      '999',
      'our rate-limit headers are not overwritten by the upstream',
    );
    assert.equal(res.text, '{"ok":true}');
  });

  it('never follows an upstream redirect', async () => {
    let hits = 0;
    const { server, url } = await listen((req, res) => {
      hits++;
      req.resume();
      res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    });
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    const gw = await gateway({ pod: false, routes: staticRouteSource(`${url}/v1`, 'k') });
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as Envelope).error.code, 'upstream_bad_response');
    assert.equal(hits, 1);
  });

  it('refuses an upstream answer larger than max_response_bytes', async () => {
    const { server, url } = await listen((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let n = 0;
      const write = (): void => {
        while (n++ < 100) if (!res.write(chunk)) return void res.once('drain', write);
        res.end();
      };
      write();
      res.on('error', () => undefined);
    });
    cleanup.push(
      () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    );
    const gw = await gateway({
      pod: false,
      routes: staticRouteSource(`${url}/v1`, 'k'),
      config: { upstream: { max_response_bytes: 1_000_000 } },
    });
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody() });
    assert.equal(res.status, 502);
    assert.match(((await res.json()) as Envelope).error.message, /larger than 1000000 bytes/);
  });

  it('ignores request-controlled targets: absolute-form URLs and Host go nowhere else', async () => {
    const gw = await gateway({});
    const port = new URL(gw.url).port;
    const answer = await new Promise<string>((resolve) => {
      const socket = createTcpConnection(Number(port));
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
      });
      socket.on('close', () => resolve(data));
      socket.write(
        `GET http://169.254.169.254/v1/models HTTP/1.1\r\nHost: 169.254.169.254\r\nAuthorization: Bearer gw_test_key_5f1c9a7e3b2d4c6e8a0b\r\nConnection: close\r\n\r\n`,
      );
    });
    // Either refused or served from the configured pod; never fetched from the named host.
    assert.ok(/^HTTP\/1\.1 (200|400|404)/.test(answer), answer.slice(0, 80));
    if (answer.startsWith('HTTP/1.1 200')) assert.match(answer, /test-model/);
  });
});
