import { newPodId } from './pod-record.js';

/** Pods of other tools on the same account (the `foreign pods` switch): never ours to touch. */
const FOREIGN_STATUSES = ['PAUSED', 'RUNNING', 'MIGRATING'] as const;

/**
 * A pod another tool made, with what the live API was seen to send beyond the spec (docs/runpod-contract.md, "Off-spec values on listed pods",
 * "Strictness"): status and action values the spec does not list, `runtime: {}`, extra fields,
 * and (every third pod) fields the spec calls required missing.
 */
export function foreignPod(index: number, now: number): Record<string, unknown> {
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
  if (index % 3 !== 2)
    Object.assign(base, { args: '', ports: ['8888/http'], env: {}, gpu: { id: 'NVIDIA GeForce RTX 3090' } });
  return base;
}
