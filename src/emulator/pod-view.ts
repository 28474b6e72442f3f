import type { Pod, PodAction, PodStatus } from '../runpod/schemas.js';
import { cpuPodPrice } from './cpu-catalog.js';
import { podPrice } from './gpu-catalog.js';
import type { PodRecord } from './pod-record.js';

/** Which actions RunPod allows per status (the podAction operation's description). */
export const ACTIONS: Record<PodStatus, PodAction[]> = {
  PROVISIONING: ['stop', 'terminate'],
  STARTING: ['stop', 'terminate'],
  RUNNING: ['stop', 'restart', 'terminate'],
  EXITED: ['start', 'terminate'],
  ERROR: ['start', 'terminate'],
  TERMINATED: [],
};

/** USD/hour now: the GPU price × count, 0 when EXITED or TERMINATED (the spec's `cost`). */
export function costOf(pod: PodRecord): number {
  if (pod.status === 'EXITED' || pod.status === 'TERMINATED') return 0;
  if (pod.cpu !== undefined) return cpuPodPrice(pod.cpu.flavor, pod.cpu.vcpuCount);
  return pod.gpu === undefined ? 0 : podPrice(pod.gpu, pod.cloud, pod.gpuCount);
}

/**
 * A pod record as RunPod v2 shows it (`Pod` in openapi-v2.json, every required field present).
 * `runtime` is null unless RUNNING; HTTP ports map to the emulator's pod proxy, TCP ports to a
 * made-up public port (nothing listens there: the tool only uses HTTP through the proxy).
 */
export function podView(pod: PodRecord, now: number, proxyPort: number): Pod {
  const sshUser = `${pod.id}-64411eb2`;
  return {
    id: pod.id,
    name: pod.name,
    image: pod.request.image,
    args: pod.request.args,
    disk: pod.request.disk,
    ports: pod.request.ports,
    // RunPod returns env values to anyone holding the account key (docs/runpod-contract.md), so do we.
    env: pod.request.env,
    registry: pod.request.registry,
    status: pod.status,
    actions: ACTIONS[pod.status],
    mounts: pod.request.mounts,
    // GpuConfig on GPU pods, CpuConfig (memory derived from the flavor) on CPU pods.
    ...(pod.gpu === undefined ? {} : { gpu: { id: pod.gpu.id, count: pod.gpuCount } }),
    ...(pod.cpu === undefined
      ? {}
      : {
          cpu: {
            id: pod.cpu.flavor.id,
            vcpuCount: pod.cpu.vcpuCount,
            memory: Math.round(pod.cpu.flavor.ramGbPerVcpu * pod.cpu.vcpuCount),
          },
        }),
    cloud: pod.cloud,
    dataCenterId: pod.dataCenterId,
    cudaVersion: pod.gpu?.cudaVersions[0] ?? null,
    ssh: {
      // The SSH proxy endpoint exists once the pod has a machine (after PROVISIONING).
      proxy:
        pod.status === 'PROVISIONING'
          ? null
          : { host: 'ssh.runpod.io', port: 22, username: sshUser, command: `ssh ${sshUser}@ssh.runpod.io` },
      direct: null,
    },
    template: null,
    cost: costOf(pod),
    locked: false,
    globalNetworking: { enabled: false },
    runtime: pod.status === 'RUNNING' ? runtime(pod, now, proxyPort) : null,
    createdAt: iso(pod.createdAt),
    startedAt: pod.startedAt === null ? null : iso(pod.startedAt),
  };
}

function runtime(pod: PodRecord, now: number, proxyPort: number): NonNullable<Pod['runtime']> {
  // vLLM reserves ~90% of GPU memory once the model is loaded (--gpu-memory-utilization 0.90).
  const memoryUtil = pod.loadAt === undefined && pod.standin !== undefined && !pod.zeroGpus ? 90 : 5;
  return {
    // Seconds since the container started: back to 0 when RunPod restarts an exited process.
    uptime: pod.containerStartedAt === undefined ? 0 : Math.floor((now - pod.containerStartedAt) / 1000),
    gpus: pod.zeroGpus ? [] : Array.from({ length: pod.gpuCount }, () => ({ util: 0, memoryUtil })),
    cpu: { util: 3 },
    memory: { util: 12 },
    ports: pod.request.ports.map((spec) => {
      const [priv = '0', type = 'tcp'] = spec.split('/');
      const isHttp = type === 'http';
      return {
        private: Number(priv),
        public: isHttp ? proxyPort : 30_000 + (Number(priv) % 10_000),
        type,
        ip: '127.0.0.1',
      };
    }),
  };
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');
