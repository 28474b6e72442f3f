import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/schema.js';
import { resolveGatewayKeys } from '../../src/gateway/gateway-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('loadConfig', () => {
  it("has the original Python tool's defaults", () => {
    const { config, errors } = loadConfig({ env: {}, cwd: dir });
    assert.deepEqual(errors, []);
    assert.equal(config?.proxy_host, '127.0.0.1');
    assert.equal(config?.proxy_port, 8000);
    assert.equal(config?.rate_limit_requests, 60);
    assert.equal(config?.rate_limit_window, 60);
    assert.equal(config?.max_request_size, 1_048_576);
    assert.equal(config?.max_content_length, null, 'the model context bounds a prompt, not a byte cap');
    assert.equal(config?.key_rate_limit_requests, 1200);
    assert.equal(config?.content_policy, 'off');
    assert.deepEqual(config?.allowed_origins, [
      'http://localhost:3000',
      'http://127.0.0.1:3000',
      'http://localhost:8080',
    ]);
  });

  it('layers file < environment < flags', () => {
    const file = join(dir, 'layers.json');
    writeFileSync(file, JSON.stringify({ proxy_port: 8100, rate_limit_requests: 10, log_level: 'warn' }));
    const { config, errors } = loadConfig({
      env: { PORT: '8200', RATE_LIMIT_REQUESTS: '20' },
      configPath: file,
      flags: { proxy_port: 8300 },
      cwd: dir,
    });
    assert.deepEqual(errors, []);
    assert.equal(config?.proxy_port, 8300);
    assert.equal(config?.rate_limit_requests, 20);
    assert.equal(config?.log_level, 'warn');
  });

  it('reads ./runpod-llm.json when present', () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    writeFileSync(join(cwd, 'runpod-llm.json'), JSON.stringify({ max_n: 3 }));
    assert.equal(loadConfig({ env: {}, cwd }).config?.max_n, 3);
  });

  it('reports every problem at once with its path, source and the valid values', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        content_policy: 'scrub',
        proxy_port: 70000,
        allowed_origins: ['*', 'http://ok:1'],
        colour: 'blue',
      }),
    );
    const { config, errors } = loadConfig({
      env: { RATE_LIMIT_WINDOW: 'soon', USE_HTTPS: 'maybe' },
      configPath: file,
      cwd: dir,
    });
    assert.equal(config, undefined);
    const byPath = new Map(errors.map((e) => [e.path, e]));
    assert.match(byPath.get('rate_limit_window')?.message ?? '', /not a whole number/);
    assert.equal(byPath.get('rate_limit_window')?.source, 'env RATE_LIMIT_WINDOW');
    assert.match(byPath.get('use_https')?.message ?? '', /boolean/);
    // Environment conversion errors are reported before the schema runs; the file's own problems:
    const second = loadConfig({ env: {}, configPath: file, cwd: dir });
    const paths = new Map(second.errors.map((e) => [e.path, e]));
    assert.match(paths.get('content_policy')?.message ?? '', /"off"\|"strip"\|"reject"/);
    assert.equal(paths.get('content_policy')?.source, `file ${file}`);
    assert.ok(paths.has('proxy_port'));
    assert.match(paths.get('(root)')?.message ?? '', /unknown setting\(s\): colour/);
  });

  it('keeps what the user typed with each problem from a flag or the environment, never a secret', () => {
    const { errors } = loadConfig({
      env: { PORT: 'abc', GATEWAY_API_KEYS: 'short-secret' },
      flags: { 'manager.runtime_limit': '5x' },
      cwd: dir,
    });
    const port = errors.find((e) => e.path === 'proxy_port');
    assert.deepEqual(port && { given: port.given, source: port.source, message: port.message }, {
      given: 'PORT=abc',
      source: 'env PORT',
      message: 'not a whole number',
    });
    const second = loadConfig({
      env: { GATEWAY_API_KEYS: 'short-secret' },
      flags: { 'manager.runtime_limit': '5x' },
      cwd: dir,
    });
    const byPath = new Map(second.errors.map((e) => [e.path, e]));
    assert.equal(byPath.get('manager.runtime_limit')?.given, '--runtime 5x');
    assert.equal(byPath.get('manager.runtime_limit')?.source, 'flag --runtime');
    const key = second.errors.find((e) => e.path.startsWith('api_keys'));
    assert.equal(key?.given, 'GATEWAY_API_KEYS=…');
    assert.ok(!JSON.stringify(second.errors).includes('short-secret'), 'the secret is never echoed');
  });

  it('checks rules across fields: origins, proxies, TLS files, non-loopback auth', () => {
    const origins = loadConfig({
      env: { ALLOWED_ORIGINS: 'http://localhost:3000,*,https://a.example/path' },
      cwd: dir,
    });
    assert.deepEqual(
      origins.errors.map((e) => e.path),
      ['allowed_origins[1]', 'allowed_origins[2]'],
    );
    const proxies = loadConfig({ env: { TRUSTED_PROXIES: '10.0.0.0/8,nonsense,::1' }, cwd: dir });
    assert.deepEqual(
      proxies.errors.map((e) => e.path),
      ['trusted_proxies[1]'],
    );
    const tls = loadConfig({ env: { USE_HTTPS: 'true', SSL_CERT: join(dir, 'missing.pem') }, cwd: dir });
    assert.deepEqual(tls.errors.map((e) => e.path).sort(), ['ssl_cert', 'ssl_key']);
    const open = loadConfig({ env: { HOST: '0.0.0.0' }, cwd: dir });
    assert.match(open.errors[0]?.message ?? '', /needs gateway keys/);
    const none = loadConfig({ env: { HOST: '0.0.0.0', GATEWAY_AUTH: 'none' }, cwd: dir });
    assert.match(none.errors[0]?.message ?? '', /refused on a non-loopback address/);
    const ok = loadConfig({ env: { HOST: '0.0.0.0', GATEWAY_API_KEYS: 'k'.repeat(20) }, cwd: dir });
    assert.deepEqual(ok.errors, []);
  });

  it("takes the original Python tool's RUNPOD_ENDPOINT as the upstream base, with a warning", () => {
    const { config, warnings } = loadConfig({
      env: { RUNPOD_ENDPOINT: 'https://abc-8000.proxy.runpod.net/v1/chat/completions' },
      cwd: dir,
    });
    assert.equal(config?.upstream.url, 'https://abc-8000.proxy.runpod.net/v1');
    assert.match(warnings[0]?.message ?? '', /original Python tool/);
    const bad = loadConfig({ env: { RUNPOD_ENDPOINT: 'https://abc/v2/run' }, cwd: dir });
    assert.equal(bad.errors[0]?.path, 'upstream.url');
    const notV1 = loadConfig({ env: { UPSTREAM_URL: 'http://127.0.0.1:9000' }, cwd: dir });
    assert.match(notV1.errors[0]?.message ?? '', /ending in \/v1/);
  });

  it('never echoes a secret in an error', () => {
    const { errors } = loadConfig({ env: { GATEWAY_API_KEYS: 'short-secret-1' }, cwd: dir });
    assert.equal(errors[0]?.path, 'api_keys[0]');
    assert.ok(!JSON.stringify(errors).includes('short-secret-1'));
  });

  it('warns about secrets kept in the config file', () => {
    const file = join(dir, 'secret.json');
    writeFileSync(file, JSON.stringify({ api_keys: ['k'.repeat(24)] }));
    const { warnings, config } = loadConfig({ env: {}, configPath: file, cwd: dir });
    assert.ok(config);
    assert.equal(warnings[0]?.path, 'api_keys');
  });

  it('reports an unreadable or malformed file', () => {
    const missing = loadConfig({ env: {}, configPath: join(dir, 'nope.json'), cwd: dir });
    assert.match(missing.errors[0]?.message ?? '', /cannot read config file .*ENOENT/);
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{"proxy_port": ');
    assert.match(
      loadConfig({ env: {}, configPath: file, cwd: dir }).errors[0]?.message ?? '',
      /not valid JSON/,
    );
  });
});

describe('gateway keys', () => {
  it('generates one key on loopback, stores it 0600 in a 0700 home, and reuses it', () => {
    const home = join(dir, 'home');
    const config = defaultConfig({ home });
    const first = resolveGatewayKeys(config);
    assert.equal(first.source, 'generated');
    assert.match(first.keys[0] ?? '', /^rlm_[A-Za-z0-9_-]{32}$/);
    assert.equal(statSync(first.file!).mode & 0o777, 0o600);
    assert.equal(statSync(home).mode & 0o777, 0o700);
    const second = resolveGatewayKeys(config);
    assert.equal(second.source, 'file');
    assert.deepEqual(second.keys, first.keys);
  });

  it('prefers configured keys and honours an explicit auth "none"', () => {
    assert.deepEqual(resolveGatewayKeys(defaultConfig({ api_keys: ['x'.repeat(16)] })).keys, [
      'x'.repeat(16),
    ]);
    assert.equal(resolveGatewayKeys(defaultConfig({ auth: 'none' })).source, 'none');
  });

  it('tightens a home directory that is too open', () => {
    const home = join(dir, 'loose');
    resolveGatewayKeys(defaultConfig({ home }));
    chmodSync(home, 0o755);
    rmSync(join(home, 'gateway.key'));
    resolveGatewayKeys(defaultConfig({ home }));
    assert.equal(statSync(home).mode & 0o777, 0o700);
  });
});
