import { randomBytes } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import type { Pod, PodAction, PodStatus } from '../runpod/schemas.js';
import { PodLedger } from './billing.js';
import { containerShell, isVllmImage, launchOf, standinPort } from './container-command.js';
import { placePod } from './create-rules.js';
import type { EmulatorCpu } from './cpu-catalog.js';
import type { Faults } from './faults.js';
import { foreignPod } from './foreign-pods.js';
import type { EmulatorGpu } from './gpu-catalog.js';
import { GUARD_ENV } from '../guard/recipe.js';
import { guardStandin } from './guard-emulation.js';
import { shellEchoLines, unrecognizedVllmArgs } from './pod-args.js';
import {
  type ContainerStart,
  MAX_LOG_LINES,
  newPodId,
  type PodLogLine,
  type PodRecord,
  type Schedule,
} from './pod-record.js';
import { ACTIONS, costOf, podView } from './pod-view.js';
import { ProblemError } from './problem.js';
import { createVllmStandinHandler, type VllmStandinHandler } from './vllm-standin.js';

export interface PodStoreDeps {
  clock: Clock;
  schedule: Schedule;
  faults: Faults;
  catalog: readonly EmulatorGpu[];
  cpuCatalog: readonly EmulatorCpu[];
  ledger: PodLedger;
  /** The pod proxy's port, shown as the public side of HTTP port mappings. */
  proxyPort(): number;
  standin: { chunkDelayMs?: number; chunks?: number };
  /** Called on every container start (e.g. a test runs the real start script with this env). */
  onContainerStart?: ((start: ContainerStart) => void) | undefined;
}

/** The vLLM version the stand-in reports. */
const VLLM_VERSION = '0.11.0';

/**
 * The emulator's pods: RunPod's status machine, evaluated lazily against the injected clock.
 * Nothing runs on a timer: each read first advances every pod to "now" (PROVISIONING →
 * STARTING → RUNNING on the schedule, the stand-in loading `loadMs` after RUNNING), so a test
 * moves a ManualClock and the next call sees the new state, while a demo on the system clock
 * sees real seconds pass. Billing accrues per second at the pod's `cost` for each interval.
 */
export class PodStore {
  readonly #deps: PodStoreDeps;
  readonly #live = new Map<string, PodRecord>();
  readonly #terminated: PodRecord[] = [];
  /** Pods of other tools on the same account (raw objects, deliberately off-spec). */
  readonly #foreign = new Map<string, Record<string, unknown>>();
  /** Every action or delete attempted on a foreign pod ("never act on a pod we did not create"). */
  readonly foreignActions: Array<{ podId: string; action: string }> = [];

  constructor(deps: PodStoreDeps) {
    this.#deps = deps;
  }

  /** Validates like RunPod (422 schema, 400 rules/capacity, 402, faults) and creates the pod. */
  create(body: unknown): PodRecord {
    const { faults } = this.#deps;
    const { req, cloud, gpu, cpu, count, dataCenterId } = placePod(body, this.#deps);
    const failure = faults.takeCreateFailure();
    if (failure !== undefined && !failure.createPod)
      throw new ProblemError(failure.status, 'internal server error');

    const now = this.#deps.clock.now();
    const env = req.env ?? {};
    const record: PodRecord = {
      id: newPodId(),
      name: req.name,
      request: {
        image: req.image ?? '',
        args: req.args ?? '',
        env,
        ports: req.ports ?? [],
        disk: req.disk ?? 50,
        mounts: req.mounts ?? {},
        registry: req.registry ?? null,
      },
      cloud,
      gpu,
      gpuCount: count,
      cpu,
      dataCenterId: dataCenterId ?? 'US-KS-2',
      createdAt: now,
      launch: launchOf(req.image ?? '', req.args ?? '', env),
      podKey: `rpa_POD${randomBytes(16).toString('hex').toUpperCase()}`,
      status: 'PROVISIONING',
      since: now,
      startedAt: null,
      zeroGpus: false,
      standin: undefined,
      loadAt: undefined,
      containerStartedAt: undefined,
      exitAt: undefined,
      exitCode: 0,
      restartAt: undefined,
      crashLoop: false,
      starts: 0,
      logs: [],
      billedUntil: now,
    };
    this.#live.set(record.id, record);
    this.#log(record, now, 'system', `create pod ${record.id} (${record.request.image})`);
    // RunPod was seen to answer 5xx after creating the pod: the pod exists, the answer says no.
    if (failure !== undefined) throw new ProblemError(failure.status, 'internal server error');
    return record;
  }

  /** A live pod, advanced to now; 404 problem when unknown or terminated. */
  get(id: string): PodRecord {
    const pod = this.#live.get(id);
    if (pod === undefined) throw new ProblemError(404, 'pod not found');
    this.#advance(pod, this.#deps.clock.now());
    return pod;
  }

  list(): PodRecord[] {
    const now = this.#deps.clock.now();
    for (const pod of this.#live.values()) this.#advance(pod, now);
    return [...this.#live.values()];
  }

  /** Every pod ever created, terminated ones included (for tests: "no duplicate was created"). */
  all(): PodRecord[] {
    return [...this.#terminated, ...this.list()];
  }

  /** The pod whose pod-scoped key this is, if any (live pods only). */
  podForKey(key: string): PodRecord | undefined {
    for (const pod of this.#live.values()) if (pod.podKey === key) return pod;
    return undefined;
  }

  /** The container's environment as the process inside the pod sees it (RunPod's variables added). */
  containerEnv(pod: PodRecord): Record<string, string> {
    return {
      ...pod.request.env,
      RUNPOD_POD_ID: pod.id,
      RUNPOD_API_KEY: pod.podKey,
      RUNPOD_DC_ID: pod.dataCenterId,
      RUNPOD_PUBLIC_IP: '127.0.0.1',
      RUNPOD_GPU_COUNT: String(pod.gpuCount),
      RUNPOD_CPU_COUNT: String(pod.cpu?.vcpuCount ?? 8),
    };
  }

  /** Adds `count` pods of another tool with values the spec does not list (live API deviations). */
  addForeign(count: number): string[] {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const pod = foreignPod(this.#foreign.size, this.#deps.clock.now());
      this.#foreign.set(pod.id as string, pod);
      ids.push(pod.id as string);
    }
    return ids;
  }

  foreign(id: string): Record<string, unknown> | undefined {
    return this.#foreign.get(id);
  }

  foreignList(): Array<Record<string, unknown>> {
    return [...this.#foreign.values()];
  }

  /** Records an attempt to act on a foreign pod; true when `id` is one. */
  recordForeignAction(id: string, action: string): boolean {
    if (!this.#foreign.has(id)) return false;
    this.foreignActions.push({ podId: id, action });
    return true;
  }

  /** Applies an action; the updated pod, or null after terminate. 409 when not allowed. */
  action(id: string, action: PodAction): PodRecord | null {
    const pod = this.get(id);
    if (!ACTIONS[pod.status].includes(action)) {
      throw new ProblemError(
        409,
        `action "${action}" is not valid for a pod in status ${pod.status} (valid: ${ACTIONS[pod.status].join(', ')})`,
      );
    }
    const now = this.#deps.clock.now();
    if (action === 'terminate') {
      this.terminate(id);
      return null;
    }
    if (action === 'stop') {
      this.#log(pod, now, 'system', 'stop container');
      this.#enter(pod, 'EXITED', now);
    } else {
      // A stopped pod can come back without GPUs when capacity moved (docs/runpod-contract.md).
      pod.zeroGpus = this.#deps.faults.takeZeroGpus();
      this.#enter(pod, 'STARTING', now);
    }
    return pod;
  }

  terminate(id: string): void {
    const pod = this.get(id);
    this.#enter(pod, 'TERMINATED', this.#deps.clock.now());
    this.#live.delete(id);
    this.#terminated.push(pod);
  }

  /** Fault: the pod goes to EXITED or ERROR now (a stop from outside, a host failure). */
  kill(id: string, status: 'EXITED' | 'ERROR'): void {
    this.#enter(this.get(id), status, this.#deps.clock.now());
  }

  /**
   * Fault: the pod's main process dies now (out of memory, CUDA error). RunPod restarts the
   * container (or, with `onExit: 'exit'`, the pod becomes EXITED); with `loop` every later start
   * crashes too before the model loads.
   */
  crash(id: string, loop: boolean): void {
    const pod = this.get(id);
    if (pod.status !== 'RUNNING')
      throw new ProblemError(409, `pod ${pod.id} is ${pod.status}: no process to crash`);
    pod.crashLoop = loop;
    if (pod.containerStartedAt === undefined) return; // between two starts: the next start crashes
    const now = this.#deps.clock.now();
    this.#log(pod, now, 'container', 'ERROR [core.py] EngineCore encountered a fatal error.');
    this.#log(
      pod,
      now,
      'container',
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.',
    );
    this.#exit(pod, now, 1);
  }

  /** The pod's log lines (advanced to now), filtered as the logs endpoint's query asks. */
  logs(
    id: string,
    query: { source?: 'container' | 'system'; tail?: number; sinceMs?: number },
  ): PodLogLine[] {
    const pod = this.get(id);
    let lines = query.source === undefined ? pod.logs : pod.logs.filter((l) => l.source === query.source);
    if (query.sinceMs !== undefined) {
      const since = query.sinceMs;
      return lines.filter((l) => l.ts >= since);
    }
    const tail = query.tail ?? 100;
    lines = tail === 0 ? [] : lines.slice(-tail);
    return lines;
  }

  /** The stand-in serving `port` of a RUNNING pod, if any (the pod proxy's lookup). */
  standinFor(id: string, port: number): VllmStandinHandler | undefined {
    const pod = this.#live.get(id);
    if (pod === undefined) return undefined;
    this.#advance(pod, this.#deps.clock.now());
    if (pod.status !== 'RUNNING' || standinPort(pod) !== port) return undefined;
    return pod.standin;
  }

  /** The pod as `GET /v2/pods/{id}` shows it (call after get/list, which advance it). */
  view(pod: PodRecord): Pod {
    return podView(pod, this.#deps.clock.now(), this.#deps.proxyPort());
  }

  #advance(pod: PodRecord, now: number): void {
    const { schedule } = this.#deps;
    for (;;) {
      if (pod.status === 'PROVISIONING' && now >= pod.since + schedule.provisioningMs) {
        this.#log(pod, pod.since + schedule.provisioningMs, 'system', `image pulled: ${pod.request.image}`);
        this.#enter(pod, 'STARTING', pod.since + schedule.provisioningMs);
      } else if (pod.status === 'STARTING' && now >= pod.since + schedule.startingMs) {
        this.#enter(pod, 'RUNNING', pod.since + schedule.startingMs);
      } else if (pod.status === 'RUNNING') {
        // The earliest due container event: the model loads, the process exits, a restart.
        const due = [pod.loadAt, pod.exitAt, pod.restartAt].filter(
          (t): t is number => t !== undefined && t <= now,
        );
        if (due.length === 0) break;
        const at = Math.min(...due);
        if (at === pod.loadAt) {
          pod.standin?.setLoaded(true);
          pod.loadAt = undefined;
          this.#log(pod, at, 'container', 'INFO:     Started server process [1]');
          this.#log(pod, at, 'container', 'INFO:     Application startup complete.');
        } else if (at === pod.exitAt) {
          if (pod.crashLoop)
            this.#log(
              pod,
              at,
              'container',
              'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.',
            );
          this.#exit(pod, at, pod.exitCode);
        } else this.#startContainer(pod, at);
      } else break;
    }
    this.#bill(pod, now);
  }

  #enter(pod: PodRecord, status: PodStatus, at: number): void {
    this.#bill(pod, at);
    pod.status = status;
    pod.since = at;
    this.#clearContainer(pod);
    if (status !== 'RUNNING') return;
    pod.startedAt = at;
    this.#startContainer(pod, at);
  }

  #clearContainer(pod: PodRecord): void {
    pod.standin = undefined;
    pod.loadAt = undefined;
    pod.exitAt = undefined;
    pod.restartAt = undefined;
    pod.containerStartedAt = undefined;
  }

  /** The container's process exited: RunPod starts it again (or the pod becomes EXITED). */
  #exit(pod: PodRecord, at: number, code: number): void {
    this.#clearContainer(pod);
    this.#log(pod, at, 'system', `container exited with code ${code}`);
    if (this.#deps.faults.settings.onExit === 'exit') {
      this.#enter(pod, 'EXITED', at);
      return;
    }
    pod.restartAt = at + this.#deps.schedule.restartMs;
  }

  /** A container start: a `start container` system line, the process's output, what it serves. */
  #startContainer(pod: PodRecord, at: number): void {
    const { faults, schedule, standin } = this.#deps;
    this.#clearContainer(pod);
    pod.starts += 1;
    pod.containerStartedAt = at;
    this.#log(pod, at, 'system', 'start container');
    // The command the container runs as a shell: the JSON start command where RunPod honours it,
    // or `args` itself on an image without an entrypoint (the base64-packed script unpacked).
    const json = containerShell(pod.request.image, pod.request.args, faults.settings.argsMode);
    const honoured = json !== undefined;
    const env = this.containerEnv(pod);
    this.#deps.onContainerStart?.({
      podId: pod.id,
      image: pod.request.image,
      args: pod.request.args,
      env,
      shell: json,
      start: pod.starts,
    });
    const crashAfter = (code: number): void => {
      pod.exitAt = at + schedule.crashMs;
      pod.exitCode = code;
    };
    const say = (line: string): void => this.#log(pod, at, 'container', line);

    if (honoured) for (const line of shellEchoLines(json, env)) say(line);
    const runsVllm = honoured
      ? /\bvllm\s+serve\b|vllm\.entrypoints\.openai\.api_server/.test(json)
      : isVllmImage(pod.request.image);
    if (!runsVllm) {
      // Another image (a probe): without the JSON form its entrypoint gets the text as arguments
      // and prints it; a shell that does not end in a wait (sleep infinity) exits and restarts.
      if (!honoured) say(pod.request.args);
      if (!(honoured && /\bsleep\s+(infinity|\d{3,})\b/.test(json))) crashAfter(honoured ? 0 : 2);
      return;
    }
    if (!honoured) {
      const bad = unrecognizedVllmArgs(pod.request.args, env);
      if (bad !== undefined) {
        say('usage: vllm serve [model_tag] [options]');
        say(`vllm serve: error: unrecognized arguments: ${bad.join(' ')}`);
        crashAfter(2);
        return;
      }
    }
    say(`INFO [api_server.py] vLLM API server version ${VLLM_VERSION}`);
    say(`INFO [api_server.py] model: ${pod.launch.model ?? pod.launch.servedModelName}`);
    if (pod.crashLoop || faults.settings.crashLoop) {
      pod.crashLoop = true;
      pod.exitAt = at + schedule.crashMs;
      pod.exitCode = 1;
      return;
    }
    const standinHandler = createVllmStandinHandler({
      model: pod.launch.servedModelName,
      ...(pod.launch.apiKey === undefined ? {} : { apiKey: pod.launch.apiKey }),
      ...(pod.launch.maxModelLen === undefined ? {} : { maxModelLen: pod.launch.maxModelLen }),
      ...(standin.chunkDelayMs === undefined ? {} : { chunkDelayMs: standin.chunkDelayMs }),
      ...(standin.chunks === undefined ? {} : { chunks: standin.chunks }),
      loaded: false,
    });
    // A guarded pod (the default recipe) shows only the guard's five routes on its public port.
    pod.standin =
      pod.request.env[GUARD_ENV] !== undefined && pod.launch.apiKey !== undefined
        ? guardStandin(standinHandler, pod.launch.apiKey, () =>
            faults.settings.podKeyCanStop ? 'ok' : 'refused',
          )
        : standinHandler;
    // vLLM cannot start without a GPU, and a never-loading model keeps the port closed: 502 for ever.
    if (!pod.zeroGpus && !faults.settings.standinNeverLoads)
      pod.loadAt = at + (faults.settings.standinLoadDelayMs ?? schedule.loadMs);
  }

  #log(pod: PodRecord, ts: number, source: PodLogLine['source'], line: string): void {
    pod.logs.push({ ts, source, line });
    if (pod.logs.length > MAX_LOG_LINES) pod.logs.splice(0, pod.logs.length - MAX_LOG_LINES);
  }

  #bill(pod: PodRecord, until: number): void {
    if (until <= pod.billedUntil) return;
    this.#deps.ledger.accrue(pod.id, costOf(pod), pod.billedUntil, until);
    pod.billedUntil = until;
  }
}
