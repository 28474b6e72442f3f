import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pod } from '../runpod/schemas.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { PodLedger } from './billing.js';
import { DEFAULT_CPU_CATALOG, type EmulatorCpu } from './cpu-catalog.js';
import { Faults, type FaultSettings } from './faults.js';
import { DEFAULT_GPU_CATALOG, type EmulatorGpu } from './gpu-catalog.js';
import { createPodProxyHandler } from './pod-proxy.js';
import type { ContainerStart, PodLogLine, PodRecord, Schedule } from './pod-record.js';
import { PodStore } from './pods.js';
import { createRunPodApiHandler } from './runpod-api.js';
import type { VllmStandinHandler } from './vllm-standin.js';

/*
 * A local RunPod: the REST v2 API subset this tool uses plus one vLLM stand-in per RUNNING pod,
 * with fault injection. It lets anyone run the whole flow with no account and no money, and it
 * is what the tests run against.
 *
 * Two loopback servers on ports the OS picks (or the ones given):
 * - the API at `apiUrl` (`http://127.0.0.1:<A>`), bearer key `apiKey`, paths `/v2/...`, and the
 *   admin route `POST /_emulator/faults` (same key) so another process can inject faults;
 * - the pod proxy. Pod URLs are built from `podUrlTemplate` by plain substitution of `{podId}`
 *   and `{port}`, like the real `https://{podId}-{port}.proxy.runpod.net`; the emulator's is the
 *   path-prefix form `http://127.0.0.1:<P>/proxy/{podId}-{port}` (one server for every pod
 *   instead of a port or a DNS name per pod). Unknown or not-running pods answer 502, as the real
 *   proxy does while nothing listens.
 *
 * Time: pod status follows `schedule` against `clock`, evaluated when the API or the proxy is
 * called (no timers). Tests pass a ManualClock and advance it; a demo uses the system clock.
 *
 * Live behaviour (docs/runpod-contract.md, "Live behaviour the spec does not describe"), on by default: a
 * container whose process exits is restarted in place (RUNNING throughout, `runtime.uptime` back
 * to 0, 502 while nothing listens, a `start container` system line per start); `GET
 * /v2/pods/{id}/logs` streams the container's output (vLLM's boot lines, its argparse error);
 * each pod gets a pod-scoped key (RUNPOD_API_KEY in its env) that may read and stop that pod only.
 * Switches (`behaviour`, also `POST /_emulator/faults`): `argsMode` json|plain, `onExit`
 * restart|exit, `podKeyCanStop`, `slowCreate`, `rateLimit` bursts; `foreignPods` adds other
 * tools' pods with values the spec does not list.
 */

/** How to start the emulator; every field is optional. */
export interface EmulatorOptions {
  /** Default: a fresh random key. */
  apiKey?: string;
  /** Default 127.0.0.1. The emulator has no TLS and no real auth: keep it on loopback. */
  host?: string;
  /** API port (default 0 = any free port). */
  port?: number;
  /** Pod proxy port (default 0). */
  proxyPort?: number;
  clock?: Clock;
  /** Default {@link DEMO_SCHEDULE}, divided by `speed`. */
  schedule?: Partial<Schedule>;
  /** Runs the schedule this many times faster (default 1). */
  speed?: number;
  catalog?: readonly EmulatorGpu[];
  /** Passed to every vLLM stand-in. */
  standin?: { chunkDelayMs?: number; chunks?: number };
  /** The pod proxy's Cloudflare limit: 524 after this long without a response byte (default 100 s; 0 = off). */
  proxyIdleLimitMs?: number;
  /** Answer 429 past the spec's example quotas (default false; the headers are always sent). */
  enforceRateLimit?: boolean;
  logger?: Logger;
  /**
   * Behaviour switches and faults to start with (and to return to on a faults reset). Defaults
   * follow the live API (docs/runpod-contract.md): `argsMode: 'json'` (the JSON start command honoured; `plain`
   * = not honoured), `onExit: 'restart'` (an exited container restarts in place, RUNNING),
   * `podKeyCanStop: true`.
   */
  behaviour?: Partial<FaultSettings>;
  /** Pods of other tools already on the account, with off-spec values (default 0). */
  foreignPods?: number;
  cpuCatalog?: readonly EmulatorCpu[];
  /** Called on every container start with the container's env (a test can run the real start script). */
  onContainerStart?: (start: ContainerStart) => void;
}

/** Short enough for a demo, long enough to watch the statuses go by. */
export const DEMO_SCHEDULE: Schedule = {
  provisioningMs: 2_000,
  startingMs: 3_000,
  loadMs: 4_000,
  restartMs: 3_000,
  crashMs: 2_000,
};

export interface EmulatorPods {
  /** Live pods as `GET /v2/pods` shows them. */
  list(): Pod[];
  get(id: string): Pod | undefined;
  /** Every pod ever created, terminated included (e.g. to assert a create made no duplicate). */
  created(): PodRecord[];
  /** The vLLM stand-in of a RUNNING pod (its recorded requests, setHealthy, setFault). */
  standin(id: string): VllmStandinHandler | undefined;
  /** Fault: the pod goes to EXITED or ERROR now. */
  kill(id: string, status: 'EXITED' | 'ERROR'): void;
  /** Fault: the pod's process dies now and RunPod restarts it; `loop`: every start crashes again. */
  crash(id: string, loop?: boolean): void;
  /** The pod's log lines (container and system), oldest first. */
  logs(id: string): PodLogLine[];
  /** The env the pod's process sees (RUNPOD_POD_ID, RUNPOD_API_KEY = the pod-scoped key, …). */
  containerEnv(id: string): Record<string, string>;
  /** Adds pods of another tool (off-spec values); their ids. */
  addForeign(count: number): string[];
  /** Every action/delete attempted on a foreign pod. */
  foreignActions(): ReadonlyArray<{ podId: string; action: string }>;
  /** The pod URL for a pod and port, from the template. */
  url(id: string, port?: number): string;
}

export interface Emulator {
  apiUrl: string;
  podUrlTemplate: string;
  apiKey: string;
  faults: Faults;
  pods: EmulatorPods;
  schedule: Schedule;
  close(): Promise<void>;
}

/**
 * Starts a local RunPod on loopback: the REST v2 API, the pod proxy and a vLLM stand-in per RUNNING pod.
 *
 * @example
 *   const emu = await startEmulator({ clock, schedule: { provisioningMs: 10, startingMs: 10, loadMs: 10 } });
 *   const api = createRunPodClient({ baseUrl: emu.apiUrl, apiKey: emu.apiKey });
 *   // ... RUNPOD_POD_URL_TEMPLATE = emu.podUrlTemplate
 *   await emu.close();
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const speed = options.speed ?? 1;
  if (!(speed > 0)) throw new TypeError(`speed must be > 0, got ${speed}`);
  const base = { ...DEMO_SCHEDULE, ...options.schedule };
  const schedule: Schedule = {
    provisioningMs: base.provisioningMs / speed,
    startingMs: base.startingMs / speed,
    loadMs: base.loadMs / speed,
    restartMs: base.restartMs / speed,
    crashMs: base.crashMs / speed,
  };
  for (const [k, v] of Object.entries(schedule))
    if (!(v >= 0)) throw new TypeError(`schedule.${k} must be >= 0 ms, got ${v}`);
  const host = options.host ?? '127.0.0.1';
  const apiKey = options.apiKey ?? `rpa_EMULATOR${randomBytes(16).toString('hex').toUpperCase()}`;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  const catalog = options.catalog ?? DEFAULT_GPU_CATALOG;
  const cpuCatalog = options.cpuCatalog ?? DEFAULT_CPU_CATALOG;
  const faults = new Faults(options.behaviour ?? {});
  const ledger = new PodLedger();
  const timers = new Set<NodeJS.Timeout>();
  let proxyPort = 0;
  const store = new PodStore({
    clock,
    schedule,
    faults,
    catalog,
    cpuCatalog,
    ledger,
    proxyPort: () => proxyPort,
    standin: options.standin ?? {},
    onContainerStart: options.onContainerStart,
  });
  if ((options.foreignPods ?? 0) > 0) store.addForeign(options.foreignPods ?? 0);

  const apiServer = createServer(
    createRunPodApiHandler({
      store,
      faults,
      apiKey,
      clock,
      catalog,
      cpuCatalog,
      ledger,
      enforceRateLimit: options.enforceRateLimit ?? false,
      logger,
      timers,
    }),
  );
  const proxyServer = createServer(
    createPodProxyHandler(
      store,
      options.proxyIdleLimitMs === undefined ? {} : { idleLimitMs: options.proxyIdleLimitMs },
    ),
  );
  const apiPort = await listen(apiServer, options.port ?? 0, host);
  try {
    proxyPort = await listen(proxyServer, options.proxyPort ?? 0, host);
  } catch (err) {
    await closeServer(apiServer);
    throw err;
  }
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const podUrlTemplate = `http://${urlHost}:${proxyPort}/proxy/{podId}-{port}`;

  const pods: EmulatorPods = {
    list: () => store.list().map((p) => store.view(p)),
    get: (id) => {
      try {
        return store.view(store.get(id));
      } catch {
        return undefined;
      }
    },
    created: () => store.all(),
    standin: (id) => {
      try {
        return store.get(id).standin;
      } catch {
        return undefined;
      }
    },
    kill: (id, status) => store.kill(id, status),
    crash: (id, loop = false) => store.crash(id, loop),
    logs: (id) => store.logs(id, { sinceMs: 0 }),
    containerEnv: (id) => store.containerEnv(store.get(id)),
    addForeign: (count) => store.addForeign(count),
    foreignActions: () => store.foreignActions,
    url: (id, port = 8000) => podUrlTemplate.replace('{podId}', id).replace('{port}', String(port)),
  };

  return {
    apiUrl: `http://${urlHost}:${apiPort}`,
    podUrlTemplate,
    apiKey,
    faults,
    pods,
    schedule,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all([closeServer(apiServer), closeServer(proxyServer)]);
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    // Streams from stand-ins and slow answers would otherwise hold close() open.
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
