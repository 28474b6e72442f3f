import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { GUARD_PY, httpRequest, rawRequest, type RunningGuard, startGuard } from './run-guard.js';

/*
 * The guard's allow-list (ROUTES in src/guard/guard.py): exact (method, path) pairs, plus paths
 * with an `{id}` segment that matches exactly one segment of [A-Za-z0-9_.-]{1,200}. Checked on
 * the real module with python3, and end to end through the real guard with extra routes.
 */

const GUARD_DIR = dirname(GUARD_PY);

/** Runs python3 with guard.py importable; `code` prints one JSON value. */
function python(code: string, input: unknown): unknown {
  const run = spawnSync(
    'python3',
    [
      '-c',
      `import json, sys\nsys.path.insert(0, ${JSON.stringify(GUARD_DIR)})\nimport guard\nargs = json.loads(sys.stdin.read())\n${code}`,
    ],
    {
      input: JSON.stringify(input),
      encoding: 'utf8',
      // Importing guard.py must not leave a __pycache__ in the source tree.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' },
    },
  );
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as unknown;
}

const TABLE: [string, string][] = [
  ['GET', '/v1/models'],
  ['GET', '/v1/things/{id}'],
  ['DELETE', '/v1/things/{id}'],
  ['POST', '/v1/things/{id}/cancel'],
  ['GET', '/v1/things/{id}/parts/{id}'],
];

describe('guard route table', () => {
  it('ROUTES is a module-level frozenset of (method, path) pairs and every entry compiles', () => {
    const out = python(
      'print(json.dumps({"frozenset": isinstance(guard.ROUTES, frozenset), "pairs": all(isinstance(r, tuple) and len(r) == 2 for r in guard.ROUTES), "all": sorted(guard.ROUTES), "allowed": [guard.RouteTable(guard.ROUTES).allows(m, p) for m, p in guard.ROUTES if "{id}" not in p]}))',
      null,
    ) as { frozenset: boolean; pairs: boolean; all: [string, string][]; allowed: boolean[] };
    assert.equal(out.frozenset, true);
    assert.equal(out.pairs, true);
    assert.ok(out.all.some(([m, p]) => m === 'POST' && p === '/v1/chat/completions'));
    assert.ok(out.allowed.every(Boolean));
  });

  it('matches exact pairs and {id} segments, and nothing else', () => {
    const id200 = 'a'.repeat(200);
    const cases: [string, string, boolean][] = [
      ['GET', '/v1/models', true],
      ['GET', '/v1/things/resp_abc-123.x_Y', true],
      ['GET', `/v1/things/${id200}`, true],
      ['DELETE', '/v1/things/x', true],
      ['POST', '/v1/things/cmpl-1/cancel', true],
      ['GET', '/v1/things/a/parts/b', true],
      ['GET', '/v1/things/...', true], // dots inside an id are characters, not a path step
      // no match: wrong method, empty, too long, extra or missing segments, other characters
      ['POST', '/v1/things/x', false],
      ['GET', '/v1/things/', false],
      ['GET', '/v1/things', false],
      ['GET', `/v1/things/${id200}a`, false],
      ['GET', '/v1/things/a/b', false],
      ['GET', '/v1/things/a/', false],
      ['GET', '/v1/things//', false],
      ['GET', '/v1/things/a?x=1', false],
      ['GET', '/v1/things/a#x', false],
      ['GET', '/v1/things/a%2f..', false],
      ['GET', '/v1/things/%61', false],
      ['GET', '/v1/things/a;b', false],
      ['GET', '/v1/things/a b', false],
      ['GET', '/v1/things/é', false],
      ['GET', '/v1/things/{id}', false], // the placeholder itself is not an id
      ['GET', '/v1/things/.', false],
      ['GET', '/v1/things/..', false],
      ['POST', '/v1/things/../cancel', false],
      ['POST', '/v1/things/x/cancel/', false],
      ['POST', '/v1/things/x/CANCEL', false],
      ['GET', '/V1/things/x', false],
      ['GET', '/v1/Things/x', false],
      ['GET', '//v1/things/x', false],
      ['GET', '/v1//things/x', false],
      ['GET', '/v1/things/a/parts/', false],
      ['GET', 'http://pod/v1/things/x', false],
      ['GET', '/v1/models/x', false],
    ];
    const got = python(
      'table = guard.RouteTable(frozenset(tuple(r) for r in args["table"]))\nprint(json.dumps([table.allows(m, p) for m, p in args["cases"]]))',
      { table: TABLE, cases: cases.map(([m, p]) => [m, p]) },
    ) as boolean[];
    cases.forEach(([method, path, want], i) => assert.equal(got[i], want, `${method} ${path}`));
  });

  it('refuses a table whose {id} is not a whole segment', () => {
    const run = python(
      'try:\n    guard.RouteTable(frozenset({("GET", "/v1/x/pre{id}")}))\n    print(json.dumps("accepted"))\nexcept ValueError as err:\n    print(json.dumps(str(err)))',
      null,
    );
    assert.match(String(run), /whole path segment/);
  });
});

describe('guard with {id} routes, end to end', () => {
  const KEY = 'vk_routes_test_0123456789abcdef';
  const AUTH = { authorization: `Bearer ${KEY}` };
  let pod: VllmStandin;
  let guard: RunningGuard;

  before(async () => {
    pod = await startVllmStandin({ model: 'm', apiKey: KEY });
    // The real guard, with the test's routes added to ROUTES before it starts.
    const launch = `import json, sys\nsys.path.insert(0, ${JSON.stringify(GUARD_DIR)})\nimport guard\nguard.ROUTES = guard.ROUTES | frozenset(tuple(r) for r in json.loads(sys.argv[1]))\nsys.exit(guard.main())`;
    guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: KEY }, [
      '-c',
      launch,
      JSON.stringify(TABLE),
    ]);
  });
  after(async () => {
    await guard.close();
    await pod.close();
  });

  it('forwards a matching id path unchanged, with the key', async () => {
    for (const [method, path] of [
      ['GET', '/v1/things/resp_1'],
      ['DELETE', '/v1/things/resp_1'],
      ['POST', '/v1/things/r.2-x/cancel'],
    ] as const) {
      const seen = pod.requests.length;
      const res = await rawRequest(
        guard.port,
        httpRequest(method, path, { ...AUTH, ...(method === 'POST' ? { 'content-length': '0' } : {}) }),
      );
      assert.notEqual(res.status, 401, `${method} ${path}`);
      assert.equal(pod.requests.length, seen + 1, `${method} ${path} did not reach the stand-in`);
      assert.deepEqual([pod.requests.at(-1)?.method, pod.requests.at(-1)?.path], [method, path]);
      assert.equal(pod.requests.at(-1)?.headers.authorization, `Bearer ${KEY}`);
    }
  });

  it('answers 404 to near misses and 401 to a matching path without the key, never asking vLLM', async () => {
    const seen = pod.requests.length;
    for (const path of [
      '/v1/things/..',
      '/v1/things/a/b',
      '/v1/things/a?x=1',
      '/v1/things/%2e%2e',
      '/v1/things/{id}',
      '/v1/things/',
    ]) {
      const res = await rawRequest(guard.port, httpRequest('GET', path, AUTH));
      assert.equal(res.status, 404, path);
      assert.deepEqual(JSON.parse(res.body), { error: 'Not Found' });
    }
    assert.equal((await rawRequest(guard.port, httpRequest('GET', '/v1/things/resp_1'))).status, 401);
    assert.equal(pod.requests.length, seen);
  });
});
