import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  assertLogsClean,
  assertRawRefusal,
  assertServing,
  AUTH,
  marker,
  rawRequest,
  securityEvents,
} from './attack-helpers.js';

/**
 * Attack battery, HTTP layer (SECURITY.md "Attack battery": request smuggling, malformed and
 * oversized requests, methods, paths). Every request goes over a raw socket, because HTTP
 * clients refuse to send most of these bytes.
 */
describe('attack battery: HTTP parsing, smuggling, sizes, methods, paths', () => {
  let gw: TestGateway;
  let port: number;
  const prompt = marker('parser');
  const body = JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: prompt }] });
  const post = (headers: string, payload = body): string =>
    `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n${AUTH}Content-Type: application/json\r\n${headers}\r\n${payload}`;

  before(async () => {
    gw = await startTestGateway({ config: { rate_limit_requests: 100_000 } });
    port = Number(new URL(gw.url).port);
  });
  after(async () => {
    await assertServing(gw);
    assertLogsClean(gw, [prompt]);
    await gw.close();
  });

  /** A parser-level refusal: 400 envelope, connection closed, one response only, logged. */
  async function refusedByParser(
    data: string | Buffer,
    status = 400,
    code = 'malformed_request',
  ): Promise<void> {
    const before = securityEvents(gw).length;
    const res = await rawRequest(port, data);
    assertRawRefusal(res, status, code);
    assert.ok(res.closed, 'the connection is closed after a refusal');
    assert.equal(
      res.raw.match(/HTTP\/1\.1 \d{3}/g)?.length,
      1,
      'exactly one response: nothing smuggled behind it was answered',
    );
    const events = securityEvents(gw).slice(before);
    assert.ok(
      events.some((e) => e.status === status && typeof e.parserCode === 'string'),
      'a security event with the parser code',
    );
    await assertServing(gw);
  }

  describe('request smuggling', () => {
    const smuggled = 'GET /health HTTP/1.1\r\nHost: gw\r\n\r\n';
    it('Content-Length with Transfer-Encoding (CL.TE) → 400, the smuggled request never runs', () =>
      refusedByParser(post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${smuggled}`)));
    it('Transfer-Encoding then Content-Length (TE.CL) → 400', () =>
      refusedByParser(
        post('Transfer-Encoding: chunked\r\nContent-Length: 40\r\n', `5\r\nhello\r\n0\r\n\r\n${smuggled}`),
      ));
    it('two equal Content-Length headers → 400', () =>
      refusedByParser(post(`Content-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n`)));
    it('two different Content-Length headers → 400', () =>
      refusedByParser(post(`Content-Length: ${body.length}\r\nContent-Length: 5\r\n`)));
    it('Transfer-Encoding "chunked, identity" (chunked not last) → 400', () =>
      refusedByParser(post('Transfer-Encoding: chunked, identity\r\n', '0\r\n\r\n')));
    it('Transfer-Encoding "xchunked" → 400', () =>
      refusedByParser(post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n')));
    it('whitespace before the colon ("Transfer-Encoding : chunked") → 400', () =>
      refusedByParser(post('Transfer-Encoding : chunked\r\n', '0\r\n\r\n')));
    it('no Host header in HTTP/1.1 → 400 envelope with the security headers, logged, connection closed', async () => {
      const before = securityEvents(gw).length;
      const res = await rawRequest(port, `GET /v1/models HTTP/1.1\r\n${AUTH}\r\n`);
      assertRawRefusal(res, 400, 'invalid_host');
      assert.ok(res.closed);
      assert.ok(
        securityEvents(gw)
          .slice(before)
          .some((e) => e.code === 'invalid_host' && e.status === 400),
      );
    });
    it('two Host headers → 400 (RFC 9112: a server must refuse them), the request never runs', async () => {
      const res = await rawRequest(
        port,
        `GET /v1/models HTTP/1.1\r\nHost: gw\r\nHost: evil.example\r\n${AUTH}\r\n`,
      );
      assertRawRefusal(res, 400, 'invalid_host');
      assert.ok(res.closed);
    });
    it('HTTP/1.0 without Host is still served (Host is optional there)', async () => {
      const res = await rawRequest(port, `GET /v1/models HTTP/1.0\r\n${AUTH}\r\n`);
      assert.equal(res.status, 200);
    });
    it('obs-fold: a header continued on the next line → 400', () =>
      refusedByParser(
        `GET /v1/models HTTP/1.1\r\nHost: gw\r\n${AUTH}X-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n`,
      ));
    it('a negative Content-Length → 400', () => refusedByParser(post('Content-Length: -1\r\n', '{')));
    it('a chunk size that overflows → 400', () =>
      refusedByParser(post('Transfer-Encoding: chunked\r\n', 'FFFFFFFFFFFFFFFFFF\r\n')));
    it('an HTTP/2 prior-knowledge preface on the HTTP/1.1 port → 400', () =>
      refusedByParser('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  });

  describe('CR/LF injection in header values', () => {
    it('a bare CR inside a header value (a second header hidden behind it) → 400', () =>
      refusedByParser(`GET /v1/models HTTP/1.1\r\nHost: gw\r\n${AUTH}X-Evil: a\rSet-Cookie: pwn=1\r\n\r\n`));
    it('a NUL byte inside a header value → 400', () =>
      refusedByParser(`GET /v1/models HTTP/1.1\r\nHost: gw\r\n${AUTH}X-Evil: a\u0000b\r\n\r\n`));
    it('bare LF line endings → 400', () => refusedByParser(`GET /v1/models HTTP/1.1\nHost: gw\nX-A: b\n\n`));
    it('an encoded CRLF in the path is neither decoded into a header nor logged raw → 404', async () => {
      const res = await rawRequest(
        port,
        'GET /v1/%0d%0aSet-Cookie:%20pwn=1%0d%0a HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
      );
      assertRawRefusal(res, 404, 'unknown_url');
      assert.equal(res.headers['set-cookie'], undefined);
      const line = gw.logs
        .lines()
        .filter((l) => l.msg === 'request')
        .at(-1);
      assert.doesNotMatch(String(line?.path), /[\r\n]/);
    });
  });

  describe('oversized requests', () => {
    it('one header of 20 KiB → 431', () =>
      refusedByParser(
        `GET /v1/models HTTP/1.1\r\nHost: gw\r\n${AUTH}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
        'request_header_fields_too_large',
      ));
    // Node counts name and value bytes against the 16 KiB limit: 3,000 headers of 7-8 bytes exceed it.
    it('3,000 small headers → 431', () =>
      refusedByParser(
        `GET /v1/models HTTP/1.1\r\nHost: gw\r\n${AUTH}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
        431,
        'request_header_fields_too_large',
      ));
    it('a URL of 20 KiB → 431', () =>
      refusedByParser(
        `GET /v1/models?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: gw\r\n${AUTH}\r\n`,
        431,
        'request_header_fields_too_large',
      ));
    it('a URL of 8 KiB (under the limit) → 404, echoed and logged only truncated', async () => {
      const res = await rawRequest(
        port,
        `GET /${'a'.repeat(8000)} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`,
      );
      const envelope = assertRawRefusal(res, 404, 'unknown_url');
      assert.ok(envelope.error.message.length < 300);
      const line = gw.logs
        .lines()
        .filter((l) => l.msg === 'request')
        .at(-1);
      assert.ok(String(line?.path).length <= 260);
    });
  });

  describe('malformed URLs', () => {
    for (const path of ['/v1/models%', '/v1/%zz/chat', '/dashboard/%c0%ae%c0%ae/etc/passwd']) {
      it(`GET ${path} (undecodable percent-encoding) → 400 envelope, URL not echoed`, async () => {
        const res = await rawRequest(
          port,
          `GET ${path} HTTP/1.1\r\nHost: gw\r\n${AUTH}Connection: close\r\n\r\n`,
        );
        const envelope = assertRawRefusal(res, 400, 'invalid_request');
        assert.ok(!envelope.error.message.includes(path));
        assert.ok(securityEvents(gw).some((e) => e.parserCode === 'FST_ERR_BAD_URL'));
        await assertServing(gw);
      });
    }
  });

  describe('methods other than GET, POST and OPTIONS', () => {
    for (const method of ['TRACE', 'PUT', 'DELETE', 'PATCH', 'PROPFIND']) {
      it(`${method} → 405 with Allow`, async () => {
        const res = await rawRequest(
          port,
          `${method} /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n${AUTH}Connection: close\r\n\r\n`,
        );
        assertRawRefusal(res, 405, 'method_not_allowed');
        assert.equal(res.headers.allow, 'GET, POST, OPTIONS');
        await assertServing(gw);
      });
    }
    it('CONNECT (tunnel request) → 405, never a tunnel', async () => {
      const res = await rawRequest(
        port,
        'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\nSSH-2.0-probe\r\n',
      );
      assertRawRefusal(res, 405, 'method_not_allowed');
      assert.ok(res.closed);
      assert.doesNotMatch(res.raw, /SSH-2\.0/);
      await assertServing(gw);
    });
    it('an unknown method token → 400', () => refusedByParser('FOO /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n'));
  });

  describe('path traversal on /dashboard assets', () => {
    const paths = [
      '/dashboard/../../etc/passwd',
      '/dashboard/%2e%2e/%2e%2e/etc/passwd',
      '/dashboard/..%2f..%2f..%2fetc%2fpasswd',
      '/dashboard/%252e%252e/%252e%252e/etc/passwd',
      '/dashboard/....//....//etc/passwd',
      '/dashboard/..\\..\\..\\etc\\passwd',
      '/dashboard/index.html%00.png',
      '/dashboard/../package.json',
      '/../../../../etc/passwd',
    ];
    for (const path of paths) {
      it(`GET ${path} → 404 envelope, never file contents`, async () => {
        const res = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
        // Where the parser or router refuses the path outright (400), that is as good as 404.
        assert.ok([400, 404].includes(res.status), `${res.status}: ${res.raw.slice(0, 120)}`);
        assertRawRefusal(res, res.status);
        assert.doesNotMatch(res.body, /root:.*:0:0:|"dependencies"|<html/i);
      });
    }
  });
});
