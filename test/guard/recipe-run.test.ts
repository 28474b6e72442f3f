import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, createServer as createNetServer } from 'node:net';
import { type Emulator, startEmulator } from '../../src/emulator/emulator.js';
import { guardedPodStart, type PodStart } from '../../src/guard/recipe.js';
import { createRunPodClient } from '../../src/runpod/client.js';

/*
 * Runs the guarded start command exactly as the pod would (`bash -c <cmd>` with the pod env),
 * with a stub `vllm` on PATH that serves the emulator's stand-in on the address it is given.
 * The recipe's ports are fixed (8000 public, 8001 loopback), so the run gets a network namespace
 * of its own when `unshare -rn` works; otherwise it runs here if both ports are free, else skips.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const KEY = 'vk_recipe_run_0123456789abcdef';
// A model name that would run `touch` if any value reached the shell unquoted.
const EVIL_MODEL = `org/m'$(touch PWNED)\`touch PWNED\`"`;
const SERVED = `served "name" $(touch PWNED)`;

const STUB = `#!/usr/bin/env bash
printf '%s\\n' "$$" > "$STUB_PID"
[ "\${STUB_MODE:-}" = sleep ] && exec sleep 300
[ "\${STUB_MODE:-}" = die ] && exit 1
cd ${JSON.stringify(REPO)} && exec node --import tsx test/guard/vllm-stub.ts "$@"
`;

// Waits for /health on 8000 to answer `want` (0 = connection refused), then reports.
const PROBE = `
import json, os, sys, time, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(method, url, key=None, body=None):
    req = urllib.request.Request(url, method=method, data=body)
    if key: req.add_header("Authorization", "Bearer " + key)
    if body is not None: req.add_header("Content-Type", "application/json")
    try:
        with opener.open(req, timeout=5) as r: return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e: return [e.code, e.read().decode()]
    except OSError: return [0, "unreachable"]
guard, vllm, want = "http://127.0.0.1:8000", "http://127.0.0.1:8001", int(sys.argv[2])
deadline = time.time() + 40
while call("GET", guard + "/health")[0] != want and time.time() < deadline: time.sleep(0.1)
out = {"phase": sys.argv[1], "health": call("GET", guard + "/health")}
if sys.argv[1] == "up":
    key, body = os.environ["VLLM_API_KEY"], b'{"prompt":"x","max_tokens":1}'
    out["models"] = call("GET", guard + "/v1/models", key)
    out["modelsNoKey"] = call("GET", guard + "/v1/models")
    out["invocations"] = call("POST", guard + "/invocations", key, body)
    out["directInvocations"] = call("POST", vllm + "/invocations", None, body)
print(json.dumps(out), flush=True)
`;

// Inside the run's own network namespace the emulator (on this process's loopback) is reachable
// only through a Unix socket: this relays 127.0.0.1:<port> there to the socket.
const RELAY = `
import socket, sys, threading
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(16)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    finally:
        try: b.shutdown(socket.SHUT_WR)
        except OSError: pass
while True:
    c, _ = srv.accept()
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
`;

const DRIVER = `set -u
if [ "\${NEW_NETNS:-}" = 1 ]; then PATH="$PATH:/usr/sbin:/sbin" ip link set lo up || exit 90; fi
relay=
if [ -n "\${API_RELAY:-}" ]; then
  python3 "$API_RELAY" 127.0.0.1 18999 "$API_SOCK" & relay=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18999) 2>/dev/null && break; sleep 0.1; done
fi
if [ "\${STUB_MODE:-}" = die ]; then
  bash -c "$RECIPE_CMD" 2>"$RECIPE_LOG" &
  pod=$!
  # vLLM dies at once: the shell stops its pod, then waits for RunPod's SIGTERM (sent here once it
  # has said so; the emulator stops pods without signalling processes) or exits if the stop failed.
  for _ in $(seq 1 600); do grep -q "stopping pod" "$RECIPE_LOG" && break; kill -0 "$pod" 2>/dev/null || break; sleep 0.1; done
  sleep 1
  kill -TERM "$pod" 2>/dev/null
  wait "$pod"
  echo "{\\"shellExit\\": $?}"
  [ -n "$relay" ] && kill "$relay"
  exit 0
fi
bash -c "$RECIPE_CMD" &
pod=$!
if [ "\${STUB_MODE:-}" = sleep ]; then
  python3 "$PROBE" listening 502
  kill -TERM "$pod"
else
  python3 "$PROBE" up 200
  kill "$(cat "$STUB_PID")"
fi
wait "$pod"
echo "{\\"shellExit\\": $?}"
python3 "$PROBE" gone 0
# Reaped or a zombie (its parent, the recipe shell, is gone; this machine's init may not reap): not running.
state=$(awk '{print $3}' "/proc/$(cat "$STUB_PID")/stat" 2>/dev/null)
[ -n "$state" ] && [ "$state" != Z ] && echo '{"stubAlive": true}'
exit 0
`;

type Isolation = { argv: string[]; netns: boolean } | { skip: string };

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function isolation(): Promise<Isolation> {
  const probe = spawnSync('unshare', ['-rn', 'sh', '-c', 'PATH="$PATH:/usr/sbin:/sbin" ip link set lo up'], {
    stdio: 'ignore',
  });
  if (probe.status === 0) return { argv: ['unshare', '-rn', 'bash'], netns: true };
  if ((await portFree(8000)) && (await portFree(8001))) return { argv: ['bash'], netns: false };
  return { skip: 'no network namespace (unshare -rn) and ports 8000/8001 are busy here' };
}

interface RunResult {
  phases: Record<string, unknown>[];
  stderr: string;
}

describe('the guarded start command under bash', () => {
  let dir: string;
  let how: Isolation;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'guard-recipe-'));
    writeFileSync(join(dir, 'vllm'), STUB);
    chmodSync(join(dir, 'vllm'), 0o755);
    writeFileSync(join(dir, 'probe.py'), PROBE);
    writeFileSync(join(dir, 'driver.sh'), DRIVER);
    writeFileSync(join(dir, 'relay.py'), RELAY);
    how = await isolation();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function run(
    start: PodStart,
    mode: 'serve' | 'sleep' | 'die',
    extraEnv: Record<string, string> = {},
  ): Promise<RunResult> {
    if ('skip' in how) throw new Error(how.skip);
    const [command = 'bash', ...args] = how.argv;
    const child = spawn(command, [...args, join(dir, 'driver.sh')], {
      cwd: dir,
      detached: true, // its own process group, so a timeout can end everything it started
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...start.env,
        PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        TMPDIR: dir,
        RECIPE_CMD: (JSON.parse(start.args) as { cmd: string[] }).cmd[0] ?? '',
        PROBE: join(dir, 'probe.py'),
        STUB_PID: join(dir, `stub-${mode}.pid`),
        STUB_RECORD: join(dir, 'record.json'),
        ...(mode === 'serve' ? {} : { STUB_MODE: mode }),
        RECIPE_LOG: join(dir, 'recipe.log'),
        ...extraEnv,
        ...(how.netns ? { NEW_NETNS: '1' } : {}),
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, 90_000);
    return new Promise((resolve) => {
      child.on('close', () => {
        clearTimeout(timer);
        const phases = stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        resolve({ phases, stderr });
      });
    });
  }

  it('starts vLLM on loopback with quoted arguments and the guard on 8000; when vLLM exits, the shell and the guard exit', async (t) => {
    if ('skip' in how) return t.skip(how.skip);
    const start = guardedPodStart({
      model: EVIL_MODEL,
      servedName: SERVED,
      maxModelLen: 4096,
      gpuMemoryUtilization: 0.85,
      podKey: KEY,
    });
    const { phases, stderr } = await run(start, 'serve');
    const [up, exit, gone, ...rest] = phases;
    assert.equal(up?.phase, 'up', stderr);
    assert.deepEqual(up?.health, [200, '']);
    assert.equal(
      up?.models &&
        (JSON.parse((up.models as [number, string])[1]) as { data: { id: string }[] }).data[0]?.id,
      SERVED,
    );
    assert.deepEqual(up?.modelsNoKey, [401, '{"error":"Unauthorized"}']);
    assert.deepEqual(up?.invocations, [404, '{"error":"Not Found"}']);
    assert.equal(
      (up?.directInvocations as [number])[0],
      200,
      'vLLM behind the guard still has /invocations open, on loopback only',
    );
    assert.ok(
      typeof exit?.shellExit === 'number' && exit.shellExit !== 0,
      `shell exit ${JSON.stringify(exit)}`,
    );
    assert.deepEqual(gone?.health, [0, 'unreachable'], 'the guard went with vLLM');
    assert.deepEqual(rest, []);

    const record = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as {
      argv: string[];
      keyFromEnv: string;
    };
    assert.deepEqual(record.argv, [
      'serve',
      EVIL_MODEL,
      '--host',
      '127.0.0.1',
      '--port',
      '8001',
      '--served-model-name',
      SERVED,
      '--max-model-len',
      '4096',
      '--gpu-memory-utilization',
      '0.85',
    ]);
    assert.equal(record.keyFromEnv, KEY, 'vLLM gets its key from the environment');
    assert.equal(existsSync(join(dir, 'PWNED')), false, 'no value was executed');
  });

  it('passes SIGTERM on: the shell stops vLLM and the guard and exits 143', async (t) => {
    if ('skip' in how) return t.skip(how.skip);
    const { phases, stderr } = await run(
      guardedPodStart({
        model: 'm/x',
        servedName: 'x',
        maxModelLen: 1024,
        gpuMemoryUtilization: 0.5,
        podKey: KEY,
      }),
      'sleep',
    );
    assert.deepEqual(
      phases,
      [
        { phase: 'listening', health: [502, ''] },
        { shellExit: 143 },
        { phase: 'gone', health: [0, 'unreachable'] },
      ],
      stderr,
    );
  });

  describe('when vLLM dies', () => {
    let emu: Emulator;
    let sock: string;
    let relay: ReturnType<typeof createNetServer>;
    const open = new Set<import('node:net').Socket>();
    before(async () => {
      emu = await startEmulator({ schedule: { provisioningMs: 10, startingMs: 10, loadMs: 10 } });
      // The emulator, reachable from the run's namespace through a Unix socket.
      sock = join(dir, 'api.sock');
      const port = Number(new URL(emu.apiUrl).port);
      relay = createNetServer((c) => {
        open.add(c);
        c.on('close', () => open.delete(c));
        const up = connect(port, '127.0.0.1');
        open.add(up);
        up.on('close', () => open.delete(up));
        c.pipe(up).pipe(c);
        c.on('error', () => up.destroy());
        up.on('error', () => c.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(sock, resolve));
    });
    after(async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      await emu.close();
    });

    async function runningPod(): Promise<string> {
      const api = createRunPodClient({ baseUrl: emu.apiUrl, apiKey: emu.apiKey, retries: 0 });
      const created = await api.createPod({
        name: `runpod-llm-${Math.random().toString(36).slice(2, 10)}`,
        image: 'vllm/vllm-openai:v0.11.0',
        ports: ['8000/http'],
        gpu: { id: 'NVIDIA RTX A5000', count: 1 },
      });
      for (let i = 0; i < 150 && emu.pods.get(created.id)?.status !== 'RUNNING'; i++)
        await new Promise((r) => setTimeout(r, 100));
      return created.id;
    }

    function dying(podId: string, key: string): Promise<RunResult> {
      const apiUrl = 'skip' in how || !how.netns ? emu.apiUrl : 'http://127.0.0.1:18999';
      const start = guardedPodStart({
        model: 'm/x',
        servedName: 'x',
        maxModelLen: 1024,
        gpuMemoryUtilization: 0.5,
        podKey: KEY,
        selfStop: { leaseSeconds: 600, stopAtSeconds: null, runpodApiUrl: apiUrl },
      });
      return run(start, 'die', {
        RUNPOD_POD_ID: podId,
        RUNPOD_API_KEY: key,
        ...('skip' in how || !how.netns ? {} : { API_RELAY: join(dir, 'relay.py'), API_SOCK: sock }),
      });
    }

    it("stops its own pod through the API and waits for RunPod's SIGTERM instead of exiting into a restart loop", async (t) => {
      if ('skip' in how) return t.skip(how.skip);
      const podId = await runningPod();
      const { phases, stderr } = await dying(podId, emu.apiKey);
      const log = readFileSync(join(dir, 'recipe.log'), 'utf8');
      // The emulator moves a stopped pod to EXITED on its own schedule: give a loaded box time.
      for (let i = 0; i < 150 && emu.pods.get(podId)?.status !== 'EXITED'; i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(emu.pods.get(podId)?.status, 'EXITED', `${log}\n${stderr}\n${JSON.stringify(phases)}`);
      assert.match(
        log,
        new RegExp(
          `^guard self-stop: vLLM exited with status 1; stopping pod ${podId}: HTTP 200 \\(stopped\\)$`,
          'm',
        ),
      );
      assert.deepEqual(
        phases,
        [{ shellExit: 143 }],
        `still there when RunPod's SIGTERM came: it did not exit on its own\n${log}\n${stderr}`,
      );
      assert.ok(!log.includes(emu.apiKey) && !log.includes(KEY), 'no key in the output');
    });

    it("exits with vLLM's status when the stop is refused (RunPod restarts it; the lease and the watchdog remain)", async (t) => {
      if ('skip' in how) return t.skip(how.skip);
      const podId = await runningPod();
      const { phases, stderr } = await dying(podId, 'rp_wrong_pod_scoped_key_1234');
      const log = readFileSync(join(dir, 'recipe.log'), 'utf8');
      assert.match(log, /stopping pod \w+: HTTP 401 \(key refused\)$/m, stderr);
      assert.deepEqual(phases, [{ shellExit: 1 }]);
      assert.equal(emu.pods.get(podId)?.status, 'RUNNING');
    });
  });
});
