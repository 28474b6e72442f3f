import { randomBytes } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { CreatePodRequestSchema, type Cloud, type Pod, type PodAction, type PodStatus } from '../runpod/schemas.js';
export { ACTIONS } from './pod-view.js';
import { PodLedger } from './billing.js';
import { NO_CAPACITY_DETAIL, type Faults } from './faults.js';
import { availabilityFor, type EmulatorGpu } from './gpu-catalog.js';
import { GUARD_ENV } from '../guard/recipe.js';
import { guardStandin } from './guard-emulation.js';
import { parseVllmLaunch, type VllmLaunch } from './pod-args.js';
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
}

export interface PodRecord {
  readonly id: string;
  readonly name: string;
  readonly request: { image: string; args: string; env: Record<string, string>; ports: string[]; disk: number; mounts: unknown; registry: string | null };
  readonly cloud: Cloud;
  readonly gpu: EmulatorGpu;
  readonly gpuCount: number;
  readonly dataCenterId: string;
  readonly createdAt: number;
  readonly launch: VllmLaunch;
  status: PodStatus;
  /** When the current status began. */
  since: number;
  startedAt: number | null;
  /** Came back from start/restart without its GPUs (fault). */
  zeroGpus: boolean;
  standin: VllmStandinHandler | undefined;
  /** When the stand-in loads; undefined = loaded already, or never. */
  loadAt: number | undefined;
  billedUntil: number;
}

export interface PodStoreDeps {
  clock: Clock;
  schedule: Schedule;
  faults: Faults;
  catalog: readonly EmulatorGpu[];
  ledger: PodLedger;
  /** The pod proxy's port, shown as the public side of HTTP port mappings. */
  proxyPort(): number;
  standin: { chunkDelayMs?: number; chunks?: number };
}

const PORT_SPEC = /^(\d{1,5})\/(http|tcp|udp)$/;

export class PodStore {
  readonly #deps: PodStoreDeps;
  readonly #live = new Map<string, PodRecord>();
  readonly #terminated: PodRecord[] = [];

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
    if (req.gpu === undefined) throw new ProblemError(400, 'CPU pods are not available in this emulator');
    const bad = (req.ports ?? []).find((p) => !PORT_SPEC.test(p));
    if (bad !== undefined) throw new ProblemError(400, `invalid port "${bad}": expected port/protocol such as 8000/http`);
    const gpu = this.#deps.catalog.find((g) => g.id === req.gpu?.id);
    if (gpu === undefined) throw new ProblemError(400, `gpu type "${req.gpu.id}" not found`);
    const cloud = req.cloud ?? 'SECURE';
    const count = req.gpu.count ?? 1;
    const max = cloud === 'SECURE' ? gpu.maxCount.secure : gpu.maxCount.community;
    if (count > max) throw new ProblemError(400, `gpu count ${count} exceeds the maximum of ${max} for ${gpu.id} on ${cloud}`);
    if (faults.settings.insufficientBalance) throw new ProblemError(402, 'insufficient balance to deploy this pod');
    const wanted = req.dataCenterIds ?? [];
    const dataCenter = gpu.dataCenters.find((dc) => wanted.length === 0 || wanted.includes(dc.id));
    if (faults.isNoCapacity(gpu.id) || availabilityFor(gpu, cloud, count) === 'NONE' || dataCenter === undefined) {
      throw new ProblemError(400, NO_CAPACITY_DETAIL);
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
      dataCenterId: dataCenter.id,
      createdAt: now,
      launch: parseVllmLaunch(req.args ?? '', env),
      status: 'PROVISIONING',
      since: now,
      startedAt: null,
      zeroGpus: false,
      standin: undefined,
      loadAt: undefined,
      billedUntil: now,
    };
    this.#live.set(record.id, record);
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
    if (action === 'stop') this.#enter(pod, 'EXITED', now);
    else {
      // A stopped pod can come back without GPUs when capacity moved (CONTRACT.md).
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

  /** Fault: the container dies now. */
  kill(id: string, status: 'EXITED' | 'ERROR'): void {
    this.#enter(this.get(id), status, this.#deps.clock.now());
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
      if (pod.status === 'PROVISIONING' && now >= pod.since + schedule.provisioningMs) this.#enter(pod, 'STARTING', pod.since + schedule.provisioningMs);
      else if (pod.status === 'STARTING' && now >= pod.since + schedule.startingMs) this.#enter(pod, 'RUNNING', pod.since + schedule.startingMs);
      else break;
    }
    if (pod.status === 'RUNNING' && pod.loadAt !== undefined && now >= pod.loadAt) {
      pod.standin?.setLoaded(true);
      pod.loadAt = undefined;
    }
    this.#bill(pod, now);
  }

  #enter(pod: PodRecord, status: PodStatus, at: number): void {
    this.#bill(pod, at);
    pod.status = status;
    pod.since = at;
    pod.standin = undefined;
    pod.loadAt = undefined;
    if (status !== 'RUNNING') return;
    const { faults, schedule, standin } = this.#deps;
    pod.startedAt = at;
    const standinHandler = createVllmStandinHandler({
      model: pod.launch.servedModelName,
      ...(pod.launch.apiKey === undefined ? {} : { apiKey: pod.launch.apiKey }),
      ...(pod.launch.maxModelLen === undefined ? {} : { maxModelLen: pod.launch.maxModelLen }),
      ...(standin.chunkDelayMs === undefined ? {} : { chunkDelayMs: standin.chunkDelayMs }),
      ...(standin.chunks === undefined ? {} : { chunks: standin.chunks }),
      loaded: false,
    });
    // A guarded pod (the default recipe) shows only the guard's five routes on its public port.
    pod.standin = pod.request.env[GUARD_ENV] !== undefined && pod.launch.apiKey !== undefined ? guardStandin(standinHandler, pod.launch.apiKey) : standinHandler;
    // vLLM cannot start without a GPU, and a never-loading model keeps the port closed: 502 for ever.
    if (!pod.zeroGpus && !faults.settings.standinNeverLoads) pod.loadAt = at + (faults.settings.standinLoadDelayMs ?? schedule.loadMs);
  }

  #bill(pod: PodRecord, until: number): void {
    if (until <= pod.billedUntil) return;
    this.#deps.ledger.accrue(pod.id, costOf(pod), pod.billedUntil, until);
    pod.billedUntil = until;
  }
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

