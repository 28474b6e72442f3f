import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import { GATEWAY_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('security headers', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  for (const [what, path, auth] of [
    ['an API answer', '/v1/models', true],
    ['an auth failure', '/v1/models', false],
    ['a 404', '/nope', true],
    ['/health', '/health', false],
  ] as const) {
    it(`are on ${what}`, async () => {
      const res = await fetch(
        `${gw.url}${path}`,
        auth ? { headers: { authorization: `Bearer ${GATEWAY_KEY}` } } : {},
      );
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('x-xss-protection'), '0');
      assert.equal(res.headers.get('referrer-policy'), 'strict-origin-when-cross-origin');
      assert.match(res.headers.get('permissions-policy') ?? '', /camera=\(\)/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('server'), null);
      assert.equal(res.headers.get('x-powered-by'), null);
      assert.equal(res.headers.get('strict-transport-security'), null, 'no HSTS over plain HTTP');
      assert.ok(res.headers.get('x-ratelimit-limit'));
    });
  }

  it('answers unknown routes and methods in the OpenAI envelope', async () => {
    const notFound = await fetch(`${gw.url}/v1/nope`);
    assert.equal(notFound.status, 404);
    assert.equal(((await notFound.json()) as { error: { code: string } }).error.code, 'unknown_url');
    const del = await fetch(`${gw.url}/v1/models`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
    });
    assert.equal(del.status, 405);
    assert.equal(del.headers.get('allow'), 'GET, POST, OPTIONS');
  });
});

describe('CORS', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  it("allows the configured origins (default: the original Python tool's three localhost origins)", async () => {
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:3000', 'http://localhost:8080']) {
      const res = await gw.api('/v1/models', { headers: { origin } });
      await res.arrayBuffer();
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.match(res.headers.get('vary') ?? '', /Origin/i);
    }
  });

  it('gives a disallowed origin no CORS headers and never reflects it', async () => {
    const res = await gw.api('/v1/models', { headers: { origin: 'https://evil.example' } });
    await res.arrayBuffer();
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
  });

  it('answers preflight for allowed origins with GET/POST only, without auth', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:3000',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://localhost:3000');
    assert.equal(res.headers.get('access-control-allow-methods'), 'GET, POST');
    const evil = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
  });
});

describe('TLS', () => {
  let dir: string;
  let gw: TestGateway;
  let ca: Buffer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-tls-'));
    // A throwaway CA and a server certificate for 127.0.0.1 signed by it.
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
    );
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=127.0.0.1',
    );
    execFileSync('bash', ['-c', 'printf "subjectAltName=IP:127.0.0.1\n" > ext.cnf'], { cwd: dir });
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    );
    ca = readFileSync(join(dir, 'ca.pem'));
    gw = await startTestGateway({
      tls: {
        key: readFileSync(join(dir, 'server.key'), 'utf8'),
        cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
      },
    });
  });
  after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS to a client that trusts the CA, with HSTS', async () => {
    const agent = new Agent({ connect: { ca } });
    const res = await undiciFetch(`${gw.url}/v1/models`, {
      dispatcher: agent,
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
    await agent.close();
  });

  it('is refused by a client that does not trust the certificate', async () => {
    await assert.rejects(fetch(`${gw.url}/health`));
  });
});
