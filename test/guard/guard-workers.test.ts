import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GUARD_PY, httpRequest, rawRequest } from './run-guard.js';

/**
 * GUARD_WORKERS: several processes accept from the guard's one listening socket. What they share
 * must hold across processes: the lease's renewal time and the key check's verdict (a shared
 * mapping), and GUARD_MAX_CONNECTIONS for all of them together (a pipe of free slots). A dead
 * worker takes the guard down; stopping the guard stops its workers.
 */
const KEY = 'vk_workers_test_0123456789abcdef';

/** Runs python3 with guard.py importable; `code` prints one JSON value. */
function python(code: string): unknown {
  const run = spawnSync(
    'python3',
    [
      '-c',
      `import json, os, sys\nsys.path.insert(0, ${JSON.stringify(dirname(GUARD_PY))})\nimport guard\n${code}`,
    ],
    {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' },
    },
  );
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as unknown;
}

/** The guard's worker processes (its children), from /proc. */
function workers(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}

async function until(what: string, check: () => boolean | Promise<boolean>, tries = 250): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

interface Started {
  child: ChildProcess;
  port: number;
  stderr: () => string;
}

async function startWorkers(env: Record<string, string>): Promise<Started> {
  // The upstream is a closed port: /health answers 502, which is all these tests need.
  const child = spawn('python3', [GUARD_PY], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PYTHONDONTWRITEBYTECODE: '1',
      GUARD_LISTEN_HOST: '127.0.0.1',
      GUARD_LISTEN_PORT: '0',
      GUARD_UPSTREAM: 'http://127.0.0.1:9',
      GUARD_API_KEY: KEY,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => (stderr += c));
  await until('the guard to listen', () => /listening on [^:]+:\d+/.test(stderr));
  const port = Number(/listening on [^:]+:(\d+)/.exec(stderr)?.[1]);
  return { child, port, stderr: () => stderr };
}

function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve(child.exitCode ?? child.signalCode ?? '');
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? '')));
}

describe('guard workers: shared state', () => {
  it('a renewal and a key verdict written in a forked worker are what the first process reads', () => {
    const out = python(
      'cfg = guard.Config({"GUARD_API_KEY": "k" * 20})\nlease = guard.Lease(cfg, cfg.runpod)\nlease.renewed = 5.0\nbefore = [lease.renewed, lease.self_stop]\npid = os.fork()\nif pid == 0:\n    lease.renew()\n    lease.self_stop = "refused"\n    os._exit(0)\nos.waitpid(pid, 0)\nprint(json.dumps(before + [lease.renewed > 5.0, lease.self_stop]))',
    );
    assert.deepEqual(out, [5.0, 'missing', true, 'refused']);
  });

  it('connection slots taken in one process are gone for the others, and come back when given', () => {
    const out = python(
      'slots = guard.Slots(3, True)\npid = os.fork()\nif pid == 0:\n    os._exit(0 if slots.take() and slots.take() else 1)\n_, status = os.waitpid(pid, 0)\ngot = [status, slots.take(), slots.take()]\nslots.give()\nprint(json.dumps(got + [slots.take(), slots.take()]))',
    );
    assert.deepEqual(out, [0, true, false, true, false]);
    assert.deepEqual(
      python('slots = guard.Slots(2, False)\nprint(json.dumps([slots.take(), slots.take(), slots.take()]))'),
      [true, true, false],
    );
  });

  it('GUARD_WORKERS defaults to a quarter of the CPUs, 1 to 4, and refuses 0', () => {
    const cpus = Number(python('print(len(os.sched_getaffinity(0)))'));
    assert.equal(
      python('print(json.dumps(guard.Config({"GUARD_API_KEY": "k" * 20}).workers))'),
      Math.max(1, Math.min(4, Math.floor(cpus / 4))),
    );
    assert.equal(
      python('print(json.dumps(guard.Config({"GUARD_API_KEY": "k" * 20, "GUARD_WORKERS": "3"}).workers))'),
      3,
    );
    const run = spawnSync('python3', [GUARD_PY], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GUARD_API_KEY: KEY, GUARD_WORKERS: '0' },
      encoding: 'utf8',
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /GUARD_WORKERS must be an integer >= 1/);
  });
});

describe('guard workers, end to end', () => {
  let guard: Started;
  before(async () => {
    guard = await startWorkers({ GUARD_WORKERS: '3', GUARD_MAX_CONNECTIONS: '4' });
  });
  after(async () => {
    guard.child.kill('SIGTERM');
    await exited(guard.child);
  });

  it('runs the workers as children of the first process', async () => {
    await until('two workers', () => workers(guard.child.pid ?? 0).length === 2);
  });

  it('answers 503 beyond GUARD_MAX_CONNECTIONS counted over every worker, and serves again once connections close', async () => {
    const held: Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const socket = connect(guard.port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      held.push(socket);
    }
    // Once every held connection is accepted (by whichever worker), a fifth one is refused.
    let busy = { status: 0, body: '' };
    await until('a 503', async () => {
      busy = await rawRequest(guard.port, httpRequest('GET', '/health'));
      return busy.status === 503;
    });
    assert.deepEqual(JSON.parse(busy.body), { error: 'Service Unavailable' });
    for (const socket of held) socket.destroy();
    await until(
      'a freed slot to serve /health again',
      async () => (await rawRequest(guard.port, httpRequest('GET', '/health'))).status === 502,
    );
  });

  it('answers the lease on every worker with the key, and refuses it without', async () => {
    for (let i = 0; i < 12; i++) {
      const res = await rawRequest(
        guard.port,
        httpRequest('POST', '/runpod-llm/lease', { authorization: `Bearer ${KEY}`, 'content-length': '0' }),
      );
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body), {
        guard: '3',
        lease_seconds: null,
        stop_at: null,
        self_stop: 'missing',
      });
    }
    assert.equal(
      (await rawRequest(guard.port, httpRequest('POST', '/runpod-llm/lease', { 'content-length': '0' })))
        .status,
      401,
    );
  });
});

describe('guard workers: lifetimes', () => {
  it('a worker that dies takes the guard down (exit 1), for the start script to stop the pod', async () => {
    const guard = await startWorkers({ GUARD_WORKERS: '2' });
    await until('the worker', () => workers(guard.child.pid ?? 0).length === 1);
    const [worker] = workers(guard.child.pid ?? 0);
    assert.ok(worker !== undefined);
    process.kill(worker, 'SIGKILL');
    assert.equal(await exited(guard.child), 1);
    assert.match(guard.stderr(), /^guard error worker exited$/m);
  });

  it('stopping the guard stops its workers', async () => {
    const guard = await startWorkers({ GUARD_WORKERS: '3' });
    await until('two workers', () => workers(guard.child.pid ?? 0).length === 2);
    const pids = workers(guard.child.pid ?? 0);
    guard.child.kill('SIGTERM');
    assert.equal(await exited(guard.child), 'SIGTERM');
    await until('the workers to exit', () =>
      pids.every(
        (pid) =>
          !existsSync(`/proc/${pid}`) ||
          readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true,
      ),
    );
  });
});
