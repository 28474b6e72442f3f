import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { GUARD_PY, httpRequest, rawRequest, type RunningGuard, startGuard } from './run-guard.js';

/**
 * Query strings (QUERIES in src/guard/guard.py): a route may carry the parameters its entry
 * names, each at most once and its value whole against its pattern; every other "?" is refused
 * (404) before the key is even looked at, as before. The one such route today is the Responses
 * API's retrieval, GET /v1/responses/{id}?stream=true&starting_after=N.
 */
const GUARD_DIR = dirname(GUARD_PY);
const KEY = 'vk_query_test_0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };

const CASES: [string, string, boolean][] = [
  ['GET', '/v1/responses/resp_1', true],
  ['GET', '/v1/responses/resp_1?stream=true', true],
  ['GET', '/v1/responses/resp_1?stream=false', true],
  ['GET', '/v1/responses/resp_1?starting_after=0', true],
  ['GET', '/v1/responses/resp_1?stream=true&starting_after=42', true],
  ['GET', '/v1/responses/resp_1?starting_after=42&stream=true', true],
  ['GET', `/v1/responses/resp_1?starting_after=${'9'.repeat(9)}`, true],
  // refused: other names, repeats, other value shapes, encodings, empty parts, other routes
  ['GET', '/v1/responses/resp_1?', false],
  ['GET', '/v1/responses/resp_1?stream', false],
  ['GET', '/v1/responses/resp_1?stream=', false],
  ['GET', '/v1/responses/resp_1?stream=1', false],
  ['GET', '/v1/responses/resp_1?stream=TRUE', false],
  ['GET', '/v1/responses/resp_1?stream=true&stream=false', false],
  ['GET', '/v1/responses/resp_1?stream=true&', false],
  ['GET', '/v1/responses/resp_1?&stream=true', false],
  ['GET', '/v1/responses/resp_1?starting_after=-1', false],
  ['GET', '/v1/responses/resp_1?starting_after=1e3', false],
  ['GET', `/v1/responses/resp_1?starting_after=${'9'.repeat(10)}`, false],
  ['GET', '/v1/responses/resp_1?starting_after=%31', false],
  ['GET', '/v1/responses/resp_1?stream=true;x=1', false],
  ['GET', '/v1/responses/resp_1?stream=true#x', false],
  ['GET', '/v1/responses/resp_1?include=x', false],
  ['GET', '/v1/responses/resp_1?api_key=x', false],
  ['GET', '/v1/responses/resp_1?stream=true?stream=true', false],
  ['GET', '/v1/responses/..?stream=true', false],
  ['GET', '/v1/responses/?stream=true', false],
  ['POST', '/v1/responses/resp_1/cancel?stream=true', false],
  ['POST', '/v1/responses?stream=true', false],
  ['GET', '/v1/models?stream=true', false],
  ['GET', '/v1/models?', false],
];

describe('guard query strings', () => {
  it('allows exactly the parameters QUERIES names for a route, and nothing else', () => {
    const run = spawnSync(
      'python3',
      [
        '-c',
        `import json, sys\nsys.path.insert(0, ${JSON.stringify(GUARD_DIR)})\nimport guard\nt = guard.RouteTable(guard.ROUTES)\nprint(json.dumps([t.allows_target(m, p) for m, p in json.loads(sys.stdin.read())]))`,
      ],
      {
        input: JSON.stringify(CASES.map(([m, p]) => [m, p])),
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' },
      },
    );
    assert.equal(run.status, 0, run.stderr);
    const got = JSON.parse(run.stdout) as boolean[];
    CASES.forEach(([method, path, want], i) => assert.equal(got[i], want, `${method} ${path}`));
  });

  describe('end to end', () => {
    let pod: VllmStandin;
    let guard: RunningGuard;
    before(async () => {
      pod = await startVllmStandin({ model: 'm', apiKey: KEY });
      guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: KEY });
    });
    after(async () => {
      await guard.close();
      await pod.close();
    });

    it('forwards an allowed query string unchanged, with the key', async () => {
      const body = JSON.stringify({ model: 'm', input: 'hi', store: true });
      const created = await rawRequest(
        guard.port,
        httpRequest(
          'POST',
          '/v1/responses',
          { ...AUTH, 'content-type': 'application/json', 'content-length': String(body.length) },
          body,
        ),
      );
      assert.equal(created.status, 200, created.body);
      const { id } = JSON.parse(created.body) as { id: string };
      const target = `/v1/responses/${id}?stream=false&starting_after=3`;
      const seen = pod.requests.length;
      const res = await rawRequest(guard.port, httpRequest('GET', target, AUTH));
      assert.equal(res.status, 200, res.body);
      assert.equal((JSON.parse(res.body) as { id: string }).id, id);
      assert.equal(pod.requests.length, seen + 1, 'did not reach the stand-in');
      assert.equal(pod.requests.at(-1)?.path, target);
      assert.equal(pod.requests.at(-1)?.headers.authorization, `Bearer ${KEY}`);
    });

    it('answers 404 to any other query string and 401 to an allowed one without the key, never asking vLLM', async () => {
      const seen = pod.requests.length;
      for (const [method, path, allowed] of CASES) {
        if (allowed) continue;
        const res = await rawRequest(
          guard.port,
          httpRequest(method, path, { ...AUTH, ...(method === 'POST' ? { 'content-length': '0' } : {}) }),
        );
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.deepEqual(JSON.parse(res.body), { error: 'Not Found' });
      }
      assert.equal(
        (await rawRequest(guard.port, httpRequest('GET', '/v1/responses/resp_1?stream=true'))).status,
        401,
      );
      assert.equal(pod.requests.length, seen);
    });

    it('logs the path without the query string', async () => {
      await rawRequest(
        guard.port,
        httpRequest('GET', '/v1/responses/resp_2?stream=false&starting_after=7', AUTH),
      );
      await guard.waitForLine(/^guard GET \/v1\/responses\/resp_2 /);
      const lines = guard.lines();
      assert.ok(!lines.some((l) => /starting_after|stream=/.test(l)), lines.join('\n'));
    });
  });
});
