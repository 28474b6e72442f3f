import { randomBytes } from 'node:crypto';
import { isRunPodError, RunPodError } from '../runpod/errors.js';
import type { PodLogLine } from '../runpod/logs.js';
import type { CreatePodRequest, Pod } from '../runpod/schemas.js';
import type { Clock } from '../shared/clock.js';
import { isAppError } from '../shared/errors.js';
import { interrupted, type Sleep } from '../shared/sleep.js';
import type { StateDb } from '../state/db.js';
import { INSTALL_ENV, installId, podInstall } from '../state/install.js';
import { setVerdict, type VerdictValue } from '../state/verdicts.js';
import { PROBE_NAME_PREFIX } from '../state/pods.js';
import { encodeGuardEnv, GUARD_DECODE_COMMAND, GUARD_ENV, shellQuote } from '../guard/recipe.js';

/**
 * `runpod-llm doctor --live`: one small CPU pod, for under two minutes, that
 * answers the two questions the v2 spec leaves open (docs/runpod-contract.md, "Live behaviour the spec does
 * not describe"):
 * - Does v2 honour the JSON start-command form in `args`? The probe image has an entrypoint of its
 *   own; the JSON form asks for `sh -c <script>` instead, and the script's first line prints a
 *   marker. The marker in the pod's logs: honoured. The JSON text handed to the image's
 *   entrypoint (printed, or a crash loop without the marker): not honoured.
 * - Can a pod stop itself with the pod-scoped key RunPod gives it? After the marker the script
 *   runs the guard's own self-stop (`guard.py --stop-self`, the code a guarded pod runs when its
 *   lease ends or vLLM dies) and reports its exit status. The pod reaching EXITED without our
 *   asking: honoured; the guard reporting a refusal: not honoured.
 * The pod is terminated whatever happens (also on Ctrl-C and API errors), and both verdicts are
 * stored with their date in the state, where `up` reads them.
 */

/** Small, pinned, with an ENTRYPOINT of its own (`certbot`), python3 and a POSIX sh. */
export const PROBE_IMAGE = 'certbot/certbot:v2.11.0';
const MARKER_PREFIX = 'RUNPOD_LLM_PROBE';

export interface CpuOffer {
  id: string;
  vcpuCount: number;
  /** USD per hour for the pod (price per vCPU × vCPUs). */
  pricePerHr: number;
}

/** The RunPod calls the probe makes. */
export interface ProbeApi {
  createPod(req: CreatePodRequest): Promise<Pod>;
  getPod(id: string): Promise<Pod>;
  deletePod(id: string): Promise<void>;
  listPods(): Promise<Pod[]>;
  /** `GET /v2/pods/{id}/logs`, the backfill only (bounded in time and lines). */
  podLogs(id: string, options: { source?: 'container' | 'system'; tail: number }): Promise<PodLogLine[]>;
  /** `GET /v2/catalog/cpus` (with availability for pods). */
  cpuOffers(): Promise<CpuOffer[]>;
}

export interface LiveProbeDeps {
  api: ProbeApi;
  state: StateDb;
  clock: Clock;
  sleep: Sleep;
  signal?: AbortSignal;
  /** Progress lines (stderr). */
  onStep?: (text: string) => void;
}

export interface LiveProbeOptions {
  /** The guard's source, shipped in the pod's env as `up` ships it. */
  guardSource: string;
  /** RunPod's API as the pod reaches it (the guard's GUARD_RUNPOD_API_URL). */
  runpodApiUrl: string;
  image?: string;
  /** Between status and log reads (default 3 s). */
  pollMs?: number;
  /** From the create to giving up (default 100 s: with the terminate, under two minutes). */
  deadlineMs?: number;
  /** After the marker, how long the pod has to stop itself (default 45 s). */
  selfStopWaitMs?: number;
  /** Fixed for tests; random otherwise. */
  nonce?: string;
  /** The CPU offer to use (the caller showed its price when asking for consent); default the cheapest. */
  cpu?: CpuOffer;
}

export interface ProbeVerdict {
  value: VerdictValue;
  /** What the probe saw, one line. */
  detail: string;
}

export interface LiveProbeResult {
  podId: string;
  image: string;
  cpu: CpuOffer;
  /** The pod's `args` as RunPod reads it back, and whether it is what we sent. */
  argsReadBack: string | null;
  argsUnchanged: boolean | null;
  jsonStartCommand: ProbeVerdict;
  selfStop: ProbeVerdict;
  /** The last container and system log lines (evidence). */
  logTail: string[];
  /** Create to terminate. */
  seconds: number;
  costUsd: number;
  /** Probe pods an earlier, interrupted doctor left, terminated first. */
  leftovers: string[];
  checkedAt: number;
}

export function markers(nonce: string): { honoured: string; stopExit: string } {
  return {
    honoured: `${MARKER_PREFIX}:${nonce}:json-start-command-honoured`,
    stopExit: `${MARKER_PREFIX}:${nonce}:self-stop-exit-`,
  };
}

/**
 * The probe's script (run by `sh -c` when the JSON form is honoured): the marker, then the
 * guard's self-stop with the pod-scoped key, its exit status, then a long wait so a failed stop
 * does not turn into a restart loop (the doctor terminates the pod).
 */
export function probeScript(nonce: string, guardSource: string): string {
  const m = markers(nonce);
  // `--stop-self` is the guard's entry point for it; a guard without it is driven the way its
  // lease expiry stops the pod (Lease.stop_pod with the pod's env).
  const stop = guardSource.includes('--stop-self')
    ? 'python3 "$g" --stop-self doctor --live probe'
    : `GUARD_API_KEY=probe python3 -c ${shellQuote('import importlib.util as u,os,sys;s=u.spec_from_file_location("guard",sys.argv[1]);g=u.module_from_spec(s);s.loader.exec_module(g);r=g.Lease(g.Config(os.environ)).stop_pod();sys.stderr.write("guard self-stop: doctor --live probe; "+r+"\\n");sys.exit(0 if r in ("HTTP 200","HTTP 409") else 1)')} "$g"`;
  return [
    `echo ${m.honoured}`,
    'g="${TMPDIR:-/tmp}/runpod-llm-guard.py"',
    `${GUARD_DECODE_COMMAND} > "$g"`,
    stop,
    `echo ${m.stopExit}$?`,
    'sleep 600',
  ].join('\n');
}

export function probeRequest(options: {
  name: string;
  image: string;
  cpu: CpuOffer;
  nonce: string;
  guardSource: string;
  runpodApiUrl: string;
  install: string;
}): CreatePodRequest {
  return {
    name: options.name,
    image: options.image,
    cpu: { id: options.cpu.id, vcpuCount: options.cpu.vcpuCount },
    cloud: 'SECURE',
    args: JSON.stringify({
      entrypoint: ['sh', '-c'],
      cmd: [probeScript(options.nonce, options.guardSource)],
    }),
    env: {
      [GUARD_ENV]: encodeGuardEnv(options.guardSource),
      GUARD_RUNPOD_API_URL: options.runpodApiUrl,
      [INSTALL_ENV]: options.install,
    },
    ports: [],
  };
}

/** What the logs say about the JSON form: null while undecided. */
export function judgeJsonForm(lines: readonly PodLogLine[], nonce: string): ProbeVerdict | null {
  const m = markers(nonce);
  if (lines.some((l) => l.line.trim() === m.honoured))
    return { value: 'honoured', detail: 'the JSON start command ran: its marker line is in the pod log' };
  // The raw JSON text reached the image's entrypoint (it printed or complained about it).
  const raw = lines.find((l) => l.source !== 'system' && l.line.includes('"entrypoint"'));
  if (raw !== undefined)
    return {
      value: 'not_honoured',
      detail: `the JSON text reached the image's own entrypoint as arguments: "${raw.line.slice(0, 120)}"`,
    };
  const starts = lines.filter((l) => l.source === 'system' && /\bstart container\b/i.test(l.line)).length;
  if (starts >= 2)
    return {
      value: 'not_honoured',
      detail: `the container started ${starts} times without printing the marker (a restart loop: the JSON form did not run)`,
    };
  return null;
}

/** What the logs and statuses say about the self-stop: null while undecided. */
export function judgeSelfStop(
  lines: readonly PodLogLine[],
  nonce: string,
  exitedByItself: boolean,
): ProbeVerdict | null {
  if (exitedByItself)
    return { value: 'honoured', detail: 'the pod reached EXITED through its own stop call (pod-scoped key)' };
  const m = markers(nonce);
  const exit = lines
    .map((l) => l.line.trim())
    .find((l) => l.startsWith(m.stopExit) && /^\d+$/.test(l.slice(m.stopExit.length)));
  const guardLine = lines
    .map((l) => l.line.trim())
    .filter((l) => l.startsWith('guard self-stop:'))
    .at(-1);
  if (exit !== undefined && exit.slice(m.stopExit.length) !== '0') {
    return {
      value: 'not_honoured',
      detail: `the guard's self-stop failed (exit ${exit.slice(m.stopExit.length)})${guardLine === undefined ? '' : `: ${guardLine.slice(0, 160)}`}`,
    };
  }
  return null;
}

/**
 * Runs the probe. Throws LIFECYCLE_INTERRUPTED on Ctrl-C (after terminating), a RunPodError when
 * the API fails (after terminating), or RUNPOD_UNAVAILABLE naming the pod when even the
 * terminate failed.
 */
export async function runLiveProbe(deps: LiveProbeDeps, options: LiveProbeOptions): Promise<LiveProbeResult> {
  const { api, clock } = deps;
  const step = (t: string): void => deps.onStep?.(t);
  const image = options.image ?? PROBE_IMAGE;
  const pollMs = options.pollMs ?? 3_000;
  const deadlineMs = options.deadlineMs ?? 100_000;
  const selfStopWaitMs = options.selfStopWaitMs ?? 45_000;
  const nonce = options.nonce ?? randomBytes(6).toString('hex');
  const install = installId(deps.state.home);

  // A probe an interrupted doctor left behind bills until someone ends it: that is us, now.
  const leftovers: string[] = [];
  for (const pod of await api.listPods()) {
    if (
      pod.name.startsWith(PROBE_NAME_PREFIX) &&
      podInstall(pod.env, install) === 'ours' &&
      pod.status !== 'TERMINATED'
    ) {
      await terminate(api, pod.id);
      leftovers.push(pod.id);
      step(`terminated ${pod.id}, a probe pod an earlier doctor --live left behind`);
    }
  }

  const cpu = options.cpu ?? cheapestCpu(await api.cpuOffers());
  if (cpu === undefined)
    throw new RunPodError('RUNPOD_NO_CAPACITY', 'RunPod lists no CPU type with stock for pods right now', {
      hint: 'try `runpod-llm doctor --live` again later',
    });
  if (deps.signal?.aborted === true) throw interrupted();

  const name = `${PROBE_NAME_PREFIX}${nonce}`;
  const request = probeRequest({
    name,
    image,
    cpu,
    nonce,
    guardSource: options.guardSource,
    runpodApiUrl: options.runpodApiUrl,
    install,
  });
  step(
    `creating ${name}: ${cpu.id}, ${cpu.vcpuCount} vCPU at $${cpu.pricePerHr.toFixed(3)}/h, image ${image}`,
  );
  const created = await api.createPod(request);
  const podId = created.id;
  const t0 = clock.now();
  let costPerHr = created.cost > 0 ? created.cost : cpu.pricePerHr;
  let argsReadBack: string | null = created.args ?? null;
  let json: ProbeVerdict | null = null;
  let selfStop: ProbeVerdict | null = null;
  let lines: PodLogLine[] = [];
  let logError: string | null = null;
  let failure: unknown;
  let terminatedAt = t0;
  try {
    let markerAt: number | null = null;
    let running = false;
    for (;;) {
      const pod = await api.getPod(podId);
      argsReadBack = pod.args;
      if (pod.cost > 0) costPerHr = pod.cost;
      if (pod.status === 'RUNNING' && !running) {
        running = true;
        step(`${podId} is RUNNING; reading its logs`);
      }
      if (running || pod.status === 'EXITED') {
        try {
          lines = await readLogs(api, podId);
          logError = null;
        } catch (err) {
          // The logs endpoint is the least certain part of the live API: judge by status alone.
          if (isAppError(err) && err.code === 'LIFECYCLE_INTERRUPTED') throw err;
          logError = err instanceof Error ? err.message : String(err);
        }
        json ??= judgeJsonForm(lines, nonce);
        // Only the probe's own script stops the pod (we never do before the end): EXITED means it ran.
        if (json === null && pod.status === 'EXITED')
          json = {
            value: 'honoured',
            detail: `the pod stopped itself, which only the JSON start command's script does${logError === null ? '' : ` (its logs could not be read: ${logError})`}`,
          };
        if (json?.value === 'honoured' && markerAt === null) {
          markerAt = clock.now();
          step('the JSON start command ran (marker seen); waiting for the pod to stop itself');
        }
        if (json?.value === 'honoured') selfStop = judgeSelfStop(lines, nonce, pod.status === 'EXITED');
        // The script only runs when the JSON form is honoured: otherwise self-stop stays unknown.
        if (json?.value === 'not_honoured') break;
        if (selfStop !== null) break;
        if (markerAt !== null && clock.now() - markerAt >= selfStopWaitMs) break;
      }
      if (pod.status === 'TERMINATED')
        throw new RunPodError('RUNPOD_UNAVAILABLE', `the probe pod ${podId} was terminated by someone else`, {
          hint: 'run `runpod-llm doctor --live` again',
        });
      if (clock.now() - t0 >= deadlineMs) {
        step(
          `no answer within ${Math.round(deadlineMs / 1000)} s${running ? '' : ` (the pod never reached RUNNING: ${pod.status})`}`,
        );
        break;
      }
      await deps.sleep(pollMs, deps.signal);
    }
  } catch (err) {
    failure = err;
  } finally {
    step(
      failure !== undefined && isAppError(failure) && failure.code === 'LIFECYCLE_INTERRUPTED'
        ? `interrupted: terminating ${podId} (Ctrl-C again would leave it billing)`
        : `terminating ${podId}`,
    );
    try {
      await terminate(api, podId);
      terminatedAt = clock.now();
    } catch (err) {
      terminatedAt = clock.now();
      const cause = err instanceof Error ? err.message : String(err);

      throw new RunPodError(
        'RUNPOD_UNAVAILABLE',
        `the probe pod ${podId} could not be terminated (${cause}): it bills $${costPerHr.toFixed(3)}/h until it is`,
        {
          hint: `run \`runpod-llm doctor --live\` again (it terminates leftover probe pods first), or terminate ${podId} in the RunPod console`,
        },
      );
    }
  }
  if (failure !== undefined)
    throw failure instanceof Error ? failure : new Error(`the probe failed: ${JSON.stringify(failure)}`);

  const seconds = Math.max(0, (terminatedAt - t0) / 1000);
  const jsonVerdict: ProbeVerdict = json ?? {
    value: 'unknown',
    detail:
      logError !== null
        ? `the pod's logs could not be read (${logError})`
        : lines.length === 0
          ? 'the pod printed nothing in time'
          : 'the logs showed neither the marker nor the JSON text',
  };
  const selfStopVerdict: ProbeVerdict =
    selfStop ??
    (jsonVerdict.value === 'honoured'
      ? {
          value: 'unknown',
          detail: `the pod did not stop itself within ${Math.round(selfStopWaitMs / 1000)} s of the marker, and the guard's stop reported nothing`,
        }
      : {
          value: 'unknown',
          detail: 'not tested: the probe script runs only when the JSON start command is honoured',
        });
  const checkedAt = clock.now();
  setVerdict(deps.state, {
    name: 'json_start_command',
    value: jsonVerdict.value,
    checkedAt,
    detail: jsonVerdict.detail,
  });
  setVerdict(deps.state, {
    name: 'self_stop',
    value: selfStopVerdict.value,
    checkedAt,
    detail: selfStopVerdict.detail,
  });
  return {
    podId,
    image,
    cpu,
    argsReadBack,
    argsUnchanged: argsReadBack === null ? null : argsReadBack === request.args,
    jsonStartCommand: jsonVerdict,
    selfStop: selfStopVerdict,
    logTail: lines.slice(-10).map((l) => `[${l.source}] ${l.line}`),
    seconds,
    costUsd: (costPerHr * seconds) / 3600,
    leftovers,
    checkedAt,
  };
}

export function cheapestCpu(offers: readonly CpuOffer[]): CpuOffer | undefined {
  return [...offers].sort((a, b) => a.pricePerHr - b.pricePerHr)[0];
}

async function readLogs(api: ProbeApi, podId: string): Promise<PodLogLine[]> {
  const [container, system] = await Promise.all([
    api.podLogs(podId, { source: 'container', tail: 200 }),
    api.podLogs(podId, { source: 'system', tail: 50 }),
  ]);
  return [...system, ...container].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

/** Terminate, and make sure: up to three tries (each with the client's own retries). */
async function terminate(api: ProbeApi, podId: string): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await api.deletePod(podId);
      return;
    } catch (err) {
      if (isRunPodError(err, 'RUNPOD_NOT_FOUND')) return;
      last = err;
    }
  }
  throw last;
}
