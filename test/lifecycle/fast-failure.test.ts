import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { START_MARKER, StartWatch } from '../../src/lifecycle/fast-failure.js';
import { StartFailure } from '../../src/lifecycle/readiness.js';
import { up } from '../../src/lifecycle/up.js';
import type { Pod } from '../../src/runpod/schemas.js';
import { listAudit } from '../../src/state/audit.js';
import { activeRun, lastRun } from '../../src/state/runs.js';
import { type LifecycleRig, MIN, SCHEDULE, startLifecycleRig, T0 } from './rig.js';

/*
 * `up` fails within minutes, not after the 20-minute readiness timeout, when the
 * pod shows it will never become ready; exit 5, the cause, the last log lines, nothing billing.
 * Simulated time: readiness polls every 10 s; the pod is RUNNING 60 s after the create.
 */

const RUNNING_AT = T0 + SCHEDULE.provisioningMs + SCHEDULE.startingMs;

describe('up: fast failure from the pod log', () => {
  let rig: LifecycleRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  async function failedUp(r: LifecycleRig): Promise<StartFailure> {
    try {
      await up(r.deps, r.settings);
    } catch (err) {
      assert.ok(err instanceof StartFailure, String(err));
      return err;
    }
    throw new Error('up succeeded');
  }

  it('the JSON start command not honoured (args mode plain): exit 5 within 2 minutes of RUNNING, cause, last lines, no pod left', async () => {
    const r = (rig = await startLifecycleRig({ emulator: { behaviour: { argsMode: 'plain' } } }));
    const err = await failedUp(r);
    assert.equal(exitCodeFor(err), 5);
    assert.ok(
      r.clock.now() - RUNNING_AT <= 2 * MIN,
      `failed ${(r.clock.now() - RUNNING_AT) / 1000} s after RUNNING`,
    );
    assert.equal(err.sign.kind, 'vllm_arguments');
    assert.match(
      err.message,
      /will not become ready: vLLM refused its arguments \(vllm serve: error: unrecognized arguments: /,
    );
    assert.match(err.message, /\nlast log lines:\n {2}\[system\] .*\n/);
    assert.match(err.hint ?? '', /doctor --live/);
    assert.deepEqual(r.emulator.pods.list(), [], 'nothing left billing');
    assert.equal(activeRun(r.state), undefined);
    assert.equal(lastRun(r.state)?.endReason, 'pod_failed');
    const audit = listAudit(r.state).find((e) => e.action === 'start_failed');
    assert.equal(audit?.reason, 'vllm_arguments');
    assert.ok(Array.isArray((audit?.details as { lastLines?: unknown }).lastLines));
  });

  it('a model that cannot load (every start crashes): exit 5 within 2 minutes with the crash loop named', async () => {
    const r = (rig = await startLifecycleRig({ emulator: { behaviour: { crashLoop: true } } }));
    const err = await failedUp(r);
    assert.ok(err.sign.kind === 'crash_loop' || err.sign.kind === 'restarted', err.sign.kind);
    assert.ok(
      r.clock.now() - RUNNING_AT <= 2 * MIN,
      `failed ${(r.clock.now() - RUNNING_AT) / 1000} s after RUNNING`,
    );
    assert.ok(
      err.sign.lastLines.some((l) => /CUDA out of memory/.test(l)),
      err.sign.lastLines.join('\n'),
    );
    assert.deepEqual(r.emulator.pods.list(), []);
  });

  it('a healthy start is not mistaken for a failure: the guarded pod prints the marker and becomes ready', async () => {
    const r = (rig = await startLifecycleRig());
    const result = await up(r.deps, r.settings);
    assert.ok(r.emulator.pods.logs(result.pod.podId).some((l) => l.line.startsWith(START_MARKER)));
  });
});

describe('StartWatch (pure)', () => {
  const pod = (uptime: number | undefined, status = 'RUNNING'): Pod =>
    ({
      id: 'p',
      name: 'runpod-llm-x',
      status,
      actions: [],
      image: '',
      args: '',
      ports: [],
      env: {},
      cloud: 'SECURE',
      dataCenterId: null,
      cost: 1,
      runtime: uptime === undefined ? null : { uptime },
      createdAt: '',
      startedAt: null,
    }) as Pod;
  const line = (
    source: string,
    text: string,
    ts = '2026-11-25T09:01:00Z',
  ): { ts: string; source: string; line: string } => ({ ts, source, line: text });
  const since = Date.parse('2026-11-25T09:00:00Z');

  it('no marker after the grace while other output shows → no_start_marker; the marker or no output yet → nothing', () => {
    const watch = new StartWatch({ expectMarker: true, since });
    assert.equal(
      watch.observe(pod(30), [line('container', 'INFO vLLM API server version 0.11.0')]),
      undefined,
      'within the grace',
    );
    assert.equal(
      new StartWatch({ expectMarker: true, since }).observe(pod(200), []),
      undefined,
      'no output at all: not evidence',
    );
    assert.equal(
      new StartWatch({ expectMarker: true, since }).observe(pod(200), [
        line('container', `${START_MARKER} guard v3`),
        line('container', 'loading'),
      ]),
      undefined,
    );
    const sign = new StartWatch({ expectMarker: true, since }).observe(pod(200), [
      line('container', 'INFO vLLM API server version 0.11.0'),
    ]);
    assert.equal(sign?.kind, 'no_start_marker');
    assert.equal(
      new StartWatch({ expectMarker: false, since }).observe(pod(200), [line('container', 'INFO vLLM')]),
      undefined,
    );
  });

  it('start container lines from before the wait (a resumed pod) do not count; two after it do', () => {
    const old = line('system', 'start container', '2026-11-25T08:00:00Z');
    assert.equal(
      new StartWatch({ expectMarker: false, since }).observe(pod(10), [
        old,
        line('system', 'start container'),
      ]),
      undefined,
    );
    assert.equal(
      new StartWatch({ expectMarker: false, since }).observe(pod(10), [
        line('system', 'start container'),
        line('system', 'start container'),
      ])?.kind,
      'crash_loop',
    );
  });

  it('zero GPUs counts only consecutive RUNNING polls with a nonzero uptime', () => {
    const watch = new StartWatch({ expectMarker: false, since });
    const gpuless = (uptime: number): Pod => ({
      ...pod(uptime),
      gpu: { id: 'g', count: 1 },
      runtime: { uptime, gpus: [] },
    });
    assert.equal(watch.zeroGpuPolls(gpuless(0)), 0, 'just started');
    assert.equal(watch.zeroGpuPolls(gpuless(5)), 1);
    assert.equal(
      watch.zeroGpuPolls({ ...gpuless(10), runtime: { uptime: 10, gpus: [{}] } }),
      0,
      'GPUs back: reset',
    );
    assert.equal(watch.zeroGpuPolls(gpuless(15)), 1);
    assert.equal(watch.zeroGpuPolls(gpuless(20)), 2);
  });

  it('a falling uptime between polls is a restart; not RUNNING is never judged', () => {
    const watch = new StartWatch({ expectMarker: false, since });
    assert.equal(watch.observe(pod(40), []), undefined);
    assert.equal(watch.observe(pod(undefined, 'STARTING'), []), undefined);
    assert.equal(watch.observe(pod(3), [])?.kind, 'restarted');
  });
});
