import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/emulator.js';
import { createRunPodClient, type RunPodClient, type RunPodClientOptions } from '../../src/runpod/client.js';
import type { CreatePodRequest } from '../../src/runpod/schemas.js';
import { ManualClock } from '../../src/shared/clock.js';

/** Shared set-up for emulator and client tests: a ManualClock, a short schedule, recorded sleeps. */
export const T0 = Date.parse('2026-11-25T10:00:00Z');
export const SCHEDULE = { provisioningMs: 1_000, startingMs: 1_000, loadMs: 1_000 };
export const POD_KEY = 'pod-secret-key-0123456789';

export interface Rig {
  emulator: Emulator;
  clock: ManualClock;
  client: RunPodClient;
  /** Every delay the client asked to sleep, in order. */
  sleeps: number[];
  /** A client with other options against the same emulator. */
  clientWith(options: Partial<RunPodClientOptions>): RunPodClient;
}

export async function startRig(options: EmulatorOptions = {}): Promise<Rig> {
  const clock = new ManualClock(T0);
  const emulator = await startEmulator({ clock, schedule: SCHEDULE, ...options });
  const sleeps: number[] = [];
  const clientWith = (extra: Partial<RunPodClientOptions>): RunPodClient =>
    createRunPodClient({
      baseUrl: emulator.apiUrl,
      apiKey: emulator.apiKey,
      clock,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0.5,
      ...extra,
    });
  return { emulator, clock, client: clientWith({}), sleeps, clientWith };
}

let counter = 0;

/** A create request like the one `up` sends (plain vLLM args, port 8000/http). */
export function podRequest(overrides: Partial<CreatePodRequest> = {}): CreatePodRequest {
  counter += 1;
  return {
    name: `runpod-llm-test${counter}`,
    image: 'vllm/vllm-openai:v0.11.0',
    args: `Qwen/Qwen2.5-Coder-7B-Instruct --host 0.0.0.0 --port 8000 --served-model-name qwen-coder --max-model-len 16384 --api-key ${POD_KEY}`,
    env: { HF_HOME: '/workspace/hf' },
    ports: ['8000/http'],
    disk: 40,
    gpu: { id: 'NVIDIA GeForce RTX 4090', count: 1 },
    cloud: 'SECURE',
    ...overrides,
  };
}

/** Runs a promise that must reject and returns the rejection. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, got a value');
}
