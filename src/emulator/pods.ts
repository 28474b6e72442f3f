import { randomBytes } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { CreatePodRequestSchema, type Cloud, type Pod, type PodAction, type PodStatus } from '../runpod/schemas.js';
export { ACTIONS } from './pod-view.js';
import { PodLedger } from './billing.js';
import { NO_CAPACITY_DETAIL, type Faults } from './faults.js';
import { availabilityFor, type EmulatorGpu } from './gpu-catalog.js';
import { GUARD_ENV } from '../guard/recipe.js';
import { guardStandin } from './guard-emulation.js';
import { jsonStartShell, parseVllmLaunch, shellEchoLines, tokenize, unrecognizedVllmArgs, type VllmLaunch } from './pod-args.js';
import type { EmulatorCpu } from './cpu-catalog.js';
import { ACTIONS, costOf, podView } from './pod-view.js';
import { ProblemError, validationProblem } from './problem.js';
import { createVllmStandinHandler, type VllmStandinHandler } from './vllm-standin.js';

/**
 * The emulator's pods: RunPod's status machine, evaluated lazily against the injected clock.
 * Nothing runs on a timer: each read first advances every pod to "now" (PROVISIONING →
 * STARTING → RUNNING on the schedule, the stand-in loading `loadMs` after RUNNING), so a test
 * moves a ManualClock and the next call sees the new state, while a demo on the system clock
 * sees real seconds pass. Billing accrues per second at the pod's `cost` for each interval.
 */
export interface Schedule {
  /** PROVISIONING → STARTING (image pull, machine assignment). */
  provisioningMs: number;
  /** STARTING → RUNNING (container start). */
  startingMs: number;
  /** RUNNING → the vLLM stand-in answers (model load); 502 until then. */
  loadMs: number;
  /** A container whose process exited is started again this long after (restart on exit). */
  restartMs: number;
  /** A process that cannot run (argparse error, crash loop) exits this long after it starts. */
  crashMs: number;
}

/** One line of a pod's log, as `GET /v2/pods/{id}/logs` streams it. */
export interface PodLogLine {
  ts: number;
  source: 'container' | 'system';
  line: string;
}

/** What the emulator tells a test each time a pod's container starts (`onContainerStart`). */
export interface ContainerStart {
  podId: string;
  image: string;
  args: string;
  /** The container's environment: the request's env plus what RunPod adds (RUNPOD_POD_ID, RUNPOD_API_KEY…). */
  env: Record<string, string>;
  /** The shell command when the JSON start command was honoured, else undefined. */
  shell: string | undefined;
  /** 1 for the first start, 2 after the first restart, … */
  start: number;
}

export interface PodRecord {
  readonly id: string;
  readonly name: string;
  readonly request: { image: string; args: string; env: Record<string, string>; ports: string[]; disk: number; mounts: unknown; registry: string | null };
  readonly cloud: Cloud;
  /** GPU pods: the type; CPU pods: undefined. */
  readonly gpu: EmulatorGpu | undefined;
  readonly gpuCount: number;
  /** CPU pods: the flavor and size; GPU pods: undefined. */
  readonly cpu: { flavor: EmulatorCpu; vcpuCount: number } | undefined;
  readonly dataCenterId: string;
  readonly createdAt: number;
  readonly launch: VllmLaunch;
  /** The pod-scoped key RunPod puts in the pod's env as RUNPOD_API_KEY. Never shown by the API. */
  readonly podKey: string;
  status: PodStatus;
  /** When the current status began. */
  since: number;
  startedAt: number | null;
  /** Came back from start/restart without its GPUs (fault). */
  zeroGpus: boolean;
  standin: VllmStandinHandler | undefined;
  /** When the stand-in loads; undefined = loaded already, or never. */
  loadAt: number | undefined;
  /** When the current container started (runtime.uptime); undefined while none runs. */
  containerStartedAt: number | undefined;
  /** When the running process exits by itself (argparse error, crash loop, a script that ends). */
  exitAt: number | undefined;
  exitCode: number;
  /** When an exited container is started again (restart on exit). */
  restartAt: number | undefined;
  /** Every start crashes before the model loads (fault `podCrash` with `loop`). */
  crashLoop: boolean;
  /** Container starts so far. */
  starts: number;
  /** The pod's log, oldest first, bounded to {@link MAX_LOG_LINES}. */
  readonly logs: PodLogLine[];
  billedUntil: number;
}

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

const PORT_SPEC = /^(\d{1,5})\/(http|tcp|udp)$/;
export const MAX_LOG_LINES = 5_000;
/** The vLLM version the stand-in reports. */
const VLLM_VERSION = '0.11.0';

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
    const parsed = CreatePodRequestSchema.safeParse(body);
    if (!parsed.success) throw validationProblem(parsed.error);
    const req = parsed.data;
    const { faults } = this.#deps;
    if ((req.gpu === undefined) === (req.cpu === undefined)) throw new ProblemError(400, 'exactly one of gpu or cpu must be set');
    if (req.templateId !== undefined) throw new ProblemError(404, `template ${req.templateId} not found`);
    const bad = (req.ports ?? []).find((p) => !PORT_SPEC.test(p));
    if (bad !== undefined) throw new ProblemError(400, `invalid port "${bad}": expected port/protocol such as 8000/http`);
    const cloud = req.cloud ?? 'SECURE';
    let gpu: EmulatorGpu | undefined;
    let cpu: PodRecord['cpu'];
    let count = 0;
    let dataCenterId: string | undefined;
    const wanted = req.dataCenterIds ?? [];
    if (req.cpu !== undefined) {
      const flavor = this.#deps.cpuCatalog.find((c) => c.id === req.cpu?.id);
      if (flavor === undefined) throw new ProblemError(400, `cpu flavor "${req.cpu.id}" not found`);
      const n = req.cpu.vcpuCount;
      if ((n & (n - 1)) !== 0 || n < flavor.vcpu.min || n > flavor.vcpu.max) {
        throw new ProblemError(400, `vcpuCount ${n} is not valid for ${flavor.id}: a power of two in ${flavor.vcpu.min}..${flavor.vcpu.max}`);
      }
      if (req.mounts?.persistent !== undefined) throw new ProblemError(400, 'mounts.persistent is invalid for CPU pods');
      cpu = { flavor, vcpuCount: n };
      dataCenterId = flavor.dataCenters.find((dc) => wanted.length === 0 || wanted.includes(dc.id))?.id;
      if (faults.isNoCapacity(flavor.id) || dataCenterId === undefined) throw new ProblemError(400, NO_CAPACITY_DETAIL);
      if (faults.settings.insufficientBalance) throw new ProblemError(402, 'insufficient balance to deploy this pod');
    } else if (req.gpu !== undefined) {
      gpu = this.#deps.catalog.find((g) => g.id === req.gpu?.id);
      if (gpu === undefined) throw new ProblemError(400, `gpu type "${req.gpu.id}" not found`);
      count = req.gpu.count ?? 1;
      const max = cloud === 'SECURE' ? gpu.maxCount.secure : gpu.maxCount.community;
      if (count > max) throw new ProblemError(400, `gpu count ${count} exceeds the maximum of ${max} for ${gpu.id} on ${cloud}`);
      if (faults.settings.insufficientBalance) throw new ProblemError(402, 'insufficient balance to deploy this pod');
      dataCenterId = gpu.dataCenters.find((dc) => wanted.length === 0 || wanted.includes(dc.id))?.id;
      if (faults.isNoCapacity(gpu.id) || availabilityFor(gpu, cloud, count) === 'NONE' || dataCenterId === undefined) {
        throw new ProblemError(400, NO_CAPACITY_DETAIL);
      }
    }
    const failure = faults.takeCreateFailure();
    if (failure !== undefined && !failure.createPod) throw new ProblemError(failure.status, 'internal server error');

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
      throw new ProblemError(409, `action "${action}" is not valid for a pod in status ${pod.status} (valid: ${ACTIONS[pod.status].join(', ')})`);
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
    if (pod.status !== 'RUNNING') throw new ProblemError(409, `pod ${pod.id} is ${pod.status}: no process to crash`);
    pod.crashLoop = loop;
    if (pod.containerStartedAt === undefined) return; // between two starts: the next start crashes
    const now = this.#deps.clock.now();
    this.#log(pod, now, 'container', 'ERROR [core.py] EngineCore encountered a fatal error.');
    this.#log(pod, now, 'container', 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.');
    this.#exit(pod, now, 1);
  }

  /** The pod's log lines (advanced to now), filtered as the logs endpoint's query asks. */
  logs(id: string, query: { source?: 'container' | 'system'; tail?: number; sinceMs?: number }): PodLogLine[] {
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
        const due = [pod.loadAt, pod.exitAt, pod.restartAt].filter((t): t is number => t !== undefined && t <= now);
        if (due.length === 0) break;
        const at = Math.min(...due);
        if (at === pod.loadAt) {
          pod.standin?.setLoaded(true);
          pod.loadAt = undefined;
          this.#log(pod, at, 'container', 'INFO:     Started server process [1]');
          this.#log(pod, at, 'container', 'INFO:     Application startup complete.');
        } else if (at === pod.exitAt) {
          if (pod.crashLoop) this.#log(pod, at, 'container', 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.');
          this.#exit(pod, at, pod.exitCode);
        }
        else this.#startContainer(pod, at);
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
    this.#deps.onContainerStart?.({ podId: pod.id, image: pod.request.image, args: pod.request.args, env, shell: json, start: pod.starts });
    const crashAfter = (code: number): void => {
      pod.exitAt = at + schedule.crashMs;
      pod.exitCode = code;
    };
    const say = (line: string): void => this.#log(pod, at, 'container', line);

    if (honoured) for (const line of shellEchoLines(json, env)) say(line);
    const runsVllm = honoured ? /\bvllm\s+serve\b|vllm\.entrypoints\.openai\.api_server/.test(json) : isVllmImage(pod.request.image);
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
    pod.standin = pod.request.env[GUARD_ENV] !== undefined && pod.launch.apiKey !== undefined ? guardStandin(standinHandler, pod.launch.apiKey, () => (faults.settings.podKeyCanStop ? 'ok' : 'refused')) : standinHandler;
    // vLLM cannot start without a GPU, and a never-loading model keeps the port closed: 502 for ever.
    if (!pod.zeroGpus && !faults.settings.standinNeverLoads) pod.loadAt = at + (faults.settings.standinLoadDelayMs ?? schedule.loadMs);
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

/**
 * Images the emulator treats as having no entrypoint (their `args` are the command): names with
 * `noentry` / `no-entrypoint`, like the project's docker/vllm-noentry image.
 */
export function hasEntrypoint(image: string): boolean {
  return !/no-?entry/i.test(image);
}

/**
 * The shell the container runs, if it runs one: on an entrypoint-less image, `args` (with the
 * `echo <base64> | base64 -d > f && exec bash f` packing unpacked); on an image with an entrypoint,
 * the JSON start command's shell when `argsMode` honours it; else undefined.
 */
export function containerShell(image: string, args: string, argsMode: 'json' | 'plain'): string | undefined {
  if (hasEntrypoint(image)) return argsMode === 'json' ? jsonStartShell(args) : undefined;
  const words = tokenize(args);
  const script = (words[0] === 'bash' || words[0] === 'sh' || words[0] === '/bin/bash' || words[0] === '/bin/sh') && words[1] === '-c' ? (words[2] ?? '') : args;
  const packed = /^echo ([A-Za-z0-9+/=]+) \| base64 (?:-d|--decode) > (\S+) && (?:exec )?(?:bash|sh) \2$/.exec(script.trim());
  return packed === null ? script : Buffer.from(packed[1] ?? '', 'base64').toString('utf8');
}

/** What vLLM will serve, read from whatever form the start command has. */
function launchOf(image: string, args: string, env: Record<string, string>): VllmLaunch {
  if (hasEntrypoint(image)) return parseVllmLaunch(args, env);
  return parseVllmLaunch(JSON.stringify({ entrypoint: ['bash', '-c'], cmd: [containerShell(image, args, 'json') ?? ''] }), env);
}

/** Images whose entrypoint is `vllm serve` (the stock vLLM OpenAI image and derivatives). */
function isVllmImage(image: string): boolean {
  return /vllm/i.test(image);
}

const FOREIGN_STATUSES = ['PAUSED', 'RUNNING', 'MIGRATING'] as const;

/**
 * A pod another tool made, with what the live API was seen to send beyond the spec (docs/runpod-contract.md,
 * "Off-spec values on listed pods"): status and action values the spec does not list, `runtime: {}`, extra fields,
 * and (every third pod) fields the spec calls required missing.
 */
function foreignPod(index: number, now: number): Record<string, unknown> {
  const id = `frgn${String(index).padStart(3, '0')}${newPodId().slice(0, 7)}`;
  const base: Record<string, unknown> = {
    id,
    name: ['comfyui-worker', 'jupyter-lab', 'train-run-7'][index % 3],
    status: FOREIGN_STATUSES[index % 3],
    actions: index % 3 === 1 ? ['stop', 'terminate', 'migrate'] : ['resume', 'terminate'],
    image: 'runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04',
    cloud: 'COMMUNITY',
    dataCenterId: null,
    cost: 0.19,
    runtime: {},
    createdAt: new Date(now - 3_600_000).toISOString(),
    startedAt: null,
    machine: { gpuDisplayName: 'RTX 3090', podHostId: `${id}-host` },
    interruptible: true,
  };
  if (index % 3 !== 2) Object.assign(base, { args: '', ports: ['8888/http'], env: {}, gpu: { id: 'NVIDIA GeForce RTX 3090' } });
  return base;
}

/** The exposed HTTP port vLLM listens on (its --port if exposed, else the first HTTP port). */
export function standinPort(pod: PodRecord): number | undefined {
  const http = pod.request.ports.filter((p) => p.endsWith('/http')).map((p) => Number(p.split('/')[0]));
  return http.includes(pod.launch.port) ? pod.launch.port : http[0];
}

function newPodId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(14)].map((b) => alphabet[b % alphabet.length]).join('');
}

