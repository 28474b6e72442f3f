import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Server as TcpServer,
  type Socket,
} from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfigInput } from '../../src/config/schema.js';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import { MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { assertEnvelope, assertLogsClean, assertServing, marker } from './attack-helpers.js';

/**
 * Attack battery, hostile upstreams (SECURITY.md "Attack battery"): a model server that answers
 * too much, never finishes, redirects, or sends malformed and CR/LF-injected headers. The
 * gateway must answer its client with an envelope (or end a stream with an error event), keep
 * serving, and pass none of the upstream's headers that could harm the client.
 */
describe('attack battery: hostile upstreams', () => {
  const cleanup: Array<() => unknown> = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });
  const prompt = marker('upstream');
  const chat = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    model: MODEL,
    messages: [{ role: 'user', content: prompt }],
    ...extra,
  });

  async function httpUpstream(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): Promise<{ server: Server; url: string }> {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(
      () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    );
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }
  /** An upstream speaking raw TCP: writes `response` once the request arrives. */
  async function tcpUpstream(response: string | ((socket: Socket) => void)): Promise<string> {
    const server: TcpServer = createTcpServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        if (typeof response === 'function') return response(socket);
        socket.write(response);
        setTimeout(() => socket.end(), 50);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  async function gatewayFor(url: string, config: ConfigInput = {}): Promise<TestGateway> {
    const gw = await startTestGateway({
      pod: false,
      routes: staticRouteSource(`${url}/v1`, POD_KEY, MODEL),
      config: { rate_limit_requests: 100_000, ...config },
    });
    cleanup.push(() => gw.close());
    return gw;
  }
  async function expectRefusal(
    gw: TestGateway,
    status: number,
    code: string | RegExp,
    body = chat(),
  ): Promise<Response> {
    const res = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(res.status, status);
    assertEnvelope(await res.clone().text(), code);
    await assertServing(gw);
    assertLogsClean(gw, [prompt]);
    return res;
  }

  describe('too much, too long', () => {
    it('a 100 MB answer (max_response_bytes 1 MB) → 502, and the upstream connection is dropped', async () => {
      let closedEarly = false;
      const { url } = await httpUpstream((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        let sent = 0;
        const pump = (): void => {
          while (sent < 100 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('close', () => {
          closedEarly = sent < 100 * 1024 * 1024;
        });
        pump();
      });
      const gw = await gatewayFor(url, { upstream: { max_response_bytes: 1_000_000 } });
      await expectRefusal(gw, 502, 'upstream_bad_response');
      await sleep(200);
      assert.ok(closedEarly, 'the gateway stopped reading and closed the connection');
    });

    it('an endless fast SSE stream to a client that stops reading is held back by backpressure', async () => {
      let written = 0;
      let upstreamClosed = false;
      const { url } = await httpUpstream((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const event = Buffer.from(
          `data: ${JSON.stringify({ choices: [{ delta: { content: 'x'.repeat(4000) } }] })}\n\n`,
        );
        const pump = (): void => {
          while (!upstreamClosed) {
            written += event.length;
            if (!res.write(event)) return void res.once('drain', pump);
          }
        };
        res.on('close', () => {
          upstreamClosed = true;
        });
        pump();
      });
      const gw = await gatewayFor(url);
      const controller = new AbortController();
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chat({ stream: true }),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      await sleep(1500); // the client reads nothing for 1.5 s
      const offered = written;
      assert.ok(offered < 64 * 1024 * 1024, `the upstream could push ${offered} bytes into a stalled stream`);
      controller.abort();
      for (let i = 0; i < 50 && !upstreamClosed; i++) await sleep(50);
      assert.ok(upstreamClosed, 'the client leaving closed the upstream stream');
      await assertServing(gw);
    });

    it('a stream that goes silent forever ends after the idle timeout with an error event', async () => {
      const { url } = await httpUpstream((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
      });
      const gw = await gatewayFor(url, { upstream: { idle_timeout_ms: 400 } });
      const started = Date.now();
      const text = await (
        await gw.api('/v1/chat/completions', { method: 'POST', json: chat({ stream: true }) })
      ).text();
      assert.ok(Date.now() - started < 10_000);
      const last = text.trim().split('\n\n').at(-1) ?? '';
      assertEnvelope(last.replace(/^data: /, ''), 'upstream_timeout');
      await assertServing(gw);
      assertLogsClean(gw, [prompt]);
    });

    it('a stream that trickles forever is bounded by its client: leaving cancels the upstream', async () => {
      let upstreamClosed = false;
      const { url } = await httpUpstream((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const timer = setInterval(() => res.write(': keep-alive\n\n'), 50);
        res.on('close', () => {
          clearInterval(timer);
          upstreamClosed = true;
        });
      });
      const gw = await gatewayFor(url, { upstream: { idle_timeout_ms: 300 } });
      const controller = new AbortController();
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chat({ stream: true }),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      for (let i = 0; i < 5; i++) await reader.read();
      controller.abort();
      for (let i = 0; i < 50 && !upstreamClosed; i++) await sleep(50);
      assert.ok(upstreamClosed);
      await assertServing(gw);
    });

    it('headers that never come → 504 after the first-byte timeout', async () => {
      const url = await tcpUpstream(() => undefined);
      const gw = await gatewayFor(url, { upstream: { first_byte_timeout_ms: 300 } });
      await expectRefusal(gw, 504, 'upstream_timeout');
    });
  });

  describe('redirects are never followed', () => {
    for (const status of [301, 302, 303, 307, 308]) {
      it(`${status} to another host → 502, Location not passed on, target never contacted`, async () => {
        let trapped = 0;
        const trap = await httpUpstream((_req, res) => {
          trapped++;
          res.end('{}');
        });
        const { url } = await httpUpstream((req, res) => {
          req.resume();
          res.writeHead(status, { location: `${trap.url}/steal?key=1` });
          res.end();
        });
        const gw = await gatewayFor(url);
        const res = await expectRefusal(gw, 502, 'upstream_bad_response');
        assert.equal(res.headers.get('location'), null);
        const streamed = await gw.api('/v1/chat/completions', {
          method: 'POST',
          json: chat({ stream: true }),
        });
        assert.equal(streamed.status, 502);
        await streamed.arrayBuffer();
        assert.equal(trapped, 0);
      });
    }
  });

  describe('malformed and CR/LF-injected response headers (raw TCP upstream)', () => {
    const body = '{"id":"x","object":"chat.completion","choices":[]}';
    const ok = (headers: string): string =>
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${headers}Content-Length: ${body.length}\r\n\r\n${body}`;
    const cases: Array<[string, string]> = [
      ['a bare CR hiding a Set-Cookie in a header value', ok('X-Evil: a\rSet-Cookie: pwn=1\r\n')],
      ['LF-only line endings', ok('').replaceAll('\r\n', '\n')],
      ['a NUL byte in a header value', ok('X-Evil: a\u0000b\r\n')],
      ['a header line without a colon', ok('Set-Cookie pwn=1\r\n')],
      ['obs-fold continuing a header onto a Set-Cookie line', ok('X-Folded: a\r\n Set-Cookie: pwn=1\r\n')],
      [
        'two different Content-Length values',
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n${body}`,
      ],
      [
        'Content-Length together with Transfer-Encoding',
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      ],
      ['a status code of four digits', `HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}`],
      ['a 100 KB header', ok(`X-Big: ${'a'.repeat(100_000)}\r\n`)],
      [
        'an invalid chunk size',
        'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n',
      ],
      ['not HTTP at all', 'SSH-2.0-OpenSSH_9.2\r\n'],
    ];
    for (const [name, response] of cases) {
      it(`${name} → 502 upstream_bad_response`, async () => {
        const gw = await gatewayFor(await tcpUpstream(response));
        const res = await expectRefusal(gw, 502, 'upstream_bad_response');
        assert.equal(res.headers.get('set-cookie'), null);
      });
    }
    it('101 Switching Protocols → 502, never a tunnel', async () => {
      const gw = await gatewayFor(
        await tcpUpstream(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
        ),
      );
      await expectRefusal(gw, 502, /^upstream_(bad_response|unavailable)$/);
    });
    it('well-formed but hostile headers (Set-Cookie, CORS *, framing, HTML) do not reach the client', async () => {
      const gw = await gatewayFor(
        await tcpUpstream(
          ok(
            'Set-Cookie: pwn=1\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Credentials: true\r\nX-Frame-Options: ALLOWALL\r\nContent-Security-Policy: default-src *\r\nLocation: http://evil.example/\r\nRefresh: 0; url=http://evil.example/\r\nX-RateLimit-Remaining: 999999\r\n',
          ),
        ),
      );
      const res = await gw.api('/v1/chat/completions', { method: 'POST', json: chat() });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      for (const name of [
        'set-cookie',
        'access-control-allow-origin',
        'access-control-allow-credentials',
        'location',
        'refresh',
      ])
        assert.equal(res.headers.get(name), null, name);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
      assert.notEqual(res.headers.get('x-ratelimit-remaining'), '999999');
      assertLogsClean(gw, [prompt]);
    });
  });
});
