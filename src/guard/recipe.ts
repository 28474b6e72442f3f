import { readFileSync } from 'node:fs';
import { deflateSync, inflateSync } from 'node:zlib';

/*
 * How a pod starts (docs/vllm-contract.md, "How the pod starts vLLM"; docs/runpod-contract.md, "Start-command forms").
 *
 * Guarded (the default): RunPod's `args` carries the JSON start command
 * `{"entrypoint":["bash","-c"],"cmd":["<shell>"]}`. The shell writes the guard (shipped in the
 * pod env zlib-compressed as base64, so the stock vllm/vllm-openai image needs nothing downloaded) to a file,
 * starts vLLM on 127.0.0.1:8001, where the public pod URL cannot reach it, and the guard on
 * 0.0.0.0:8000, the exposed port. When either exits, the shell stops its own pod through
 * RunPod's API (`guard.py --stop-self`, the pod-scoped key RunPod sets in the pod env): RunPod
 * restarts an exited container in place, so exiting would turn a dead vLLM into a billing crash
 * loop (docs/runpod-contract.md). Only if that stop fails does the shell exit; the guard's lease, kept on the
 * container disk, then still runs out across the restarts, and the watchdog sees the loop.
 *
 * Unguarded (`--unguarded`): plain `vllm serve` arguments on 0.0.0.0:8000; vLLM's own key then
 * guards only `/v1`, and `/invocations`, `/tokenize`, `/pause`, … are open on the public URL.
 *
 * In both forms the pod key travels in env `VLLM_API_KEY`, never in `args` or on a command line.
 */

/** What a pod start command is made from. */
export interface PodRecipeInput {
  /** Hugging Face model id, e.g. `Qwen/Qwen2.5-Coder-7B-Instruct`. */
  model: string;
  /** `--served-model-name`: what `/v1/models` lists and clients send as `model`. */
  servedName: string;
  maxModelLen: number;
  /** Fraction of GPU memory vLLM may take, in (0, 1]. */
  gpuMemoryUtilization: number;
  /** The per-pod key: vLLM's `--api-key` and the guard's bearer key. */
  podKey: string;
  /** For gated models; set as env `HF_TOKEN` only when non-empty. */
  hfToken?: string | undefined;
  /** More `vllm serve` arguments, one argument per element (each is quoted as a whole). */
  extraArgs?: readonly string[] | undefined;
  /** Guarded pods only: the guard stops its own pod when the manager is away (see guard.py). */
  selfStop?: SelfStop | undefined;
}

/**
 * The guard's self-stop: the lease the manager must renew (null: none) and a hard stop time
 * (null: none), enforced on the pod itself through RunPod's API with the pod-scoped key RunPod
 * sets in every pod's env, so a laptop that sleeps cannot leave a GPU billing.
 */
export interface SelfStop {
  leaseSeconds: number | null;
  /** Unix time, seconds. */
  stopAtSeconds: number | null;
  /** RunPod's REST base URL as the pod reaches it. */
  runpodApiUrl: string;
}

/** The `args` and `env` of a `POST /v2/pods` body. */
export interface PodStart {
  args: string;
  env: Record<string, string>;
}

/** Where vLLM listens inside the guarded pod: loopback only. */
export const GUARDED_VLLM_PORT = 8001;
/** The port RunPod exposes (`8000/http`): the guard's, or vLLM's when unguarded. */
export const EXPOSED_PORT = 8000;
/**
 * Open connections the guard accepts before answering 503. Every gateway keeps up to
 * `upstream.connections` (128 by default) keep-alive connections to a pod; 512 lets four gateways
 * (the team setup) share one pod without a burst meeting the guard's 503, while the requests
 * themselves queue where they should, in vLLM's scheduler. The guard's own default (64) is for a
 * guard run by hand.
 */
export const GUARD_POD_MAX_CONNECTIONS = 512;
/** The pod env variable carrying the guard's source, zlib-compressed and base64 (`encodeGuardEnv`). */
export const GUARD_ENV = 'RUNPOD_LLM_GUARD';
/**
 * Bound on GUARD_ENV's value. Linux refuses a single `NAME=value` string over 128 KiB
 * (MAX_ARG_STRLEN) at exec, so a guard embedded past that would start nothing; compressed, the
 * guard is about a third of its source (test/guard/recipe.test.ts keeps it under this bound).
 */
export const GUARD_ENV_MAX_BYTES = 48 * 1024;

/** The guard's source as GUARD_ENV carries it: zlib (RFC 1950, as Python's zlib reads it), then base64. */
export function encodeGuardEnv(source: string): string {
  return deflateSync(Buffer.from(source, 'utf8'), { level: 9 }).toString('base64');
}

/** The guard's source back from GUARD_ENV's value (what the start command's python3 -c does). */
export function decodeGuardEnv(value: string): string {
  return inflateSync(Buffer.from(value, 'base64')).toString('utf8');
}

/**
 * The shell command that writes the guard's source from GUARD_ENV to stdout: decodeGuardEnv done
 * by the image's own python3 (zlib and base64 are in every CPython build).
 */
export const GUARD_DECODE_COMMAND = `python3 -c 'import base64,os,sys,zlib;sys.stdout.buffer.write(zlib.decompress(base64.b64decode(os.environ["${GUARD_ENV}"],validate=True)))'`;

/** Characters a shell word may hold unquoted (no globbing, expansion, separators or `~`). */
const SAFE_WORD = /^[A-Za-z0-9_./:@%+,=-]+$/;

/**
 * One POSIX-shell word that the shell reads back as exactly `value`: bare when only safe
 * characters, else single-quoted (nothing expands inside single quotes; a `'` is closed,
 * escaped and reopened). NUL cannot be part of an argument and is refused.
 *
 * @example
 *   shellQuote('Qwen/Qwen2.5-7B') // Qwen/Qwen2.5-7B
 *   shellQuote("it's $(id)")      // 'it'\''s $(id)'
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new TypeError('a shell argument cannot contain NUL');
  if (SAFE_WORD.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The guard's source as shipped beside this module (`dist/guard/guard.py` after the build). */
export function readGuardSource(): string {
  return readFileSync(new URL('./guard.py', import.meta.url), 'utf8');
}

/** The guard's `GUARD_VERSION`, for status and audit lines. */
export function guardVersion(source: string): string {
  const match = /^GUARD_VERSION = "([^"]+)"$/m.exec(source);
  if (match?.[1] === undefined) throw new TypeError('guard source has no GUARD_VERSION');
  return match[1];
}

/**
 * The guarded start command; `guardSource` defaults to the shipped guard.
 *
 * @example
 *   const start = guardedPodStart({ model: 'Qwen/Qwen3-8B', servedName: 'qwen3', maxModelLen: 8192,
 *     gpuMemoryUtilization: 0.9, podKey: newPodKey() });
 *   // POST /v2/pods { ..., args: start.args, env: { HF_HOME, ...start.env }, ports: ['8000/http'] }
 */
export function guardedPodStart(input: PodRecipeInput, guardSource: string = readGuardSource()): PodStart {
  checkInput(input);
  guardVersion(guardSource);
  const vllm = vllmArgs(input, '127.0.0.1', GUARDED_VLLM_PORT).map(shellQuote).join(' ');
  const guardEnv = [
    'GUARD_API_KEY="$VLLM_API_KEY"',
    'GUARD_LISTEN_HOST=0.0.0.0',
    `GUARD_LISTEN_PORT=${EXPOSED_PORT}`,
    `GUARD_UPSTREAM=http://127.0.0.1:${GUARDED_VLLM_PORT}`,
    `GUARD_MAX_CONNECTIONS=${GUARD_POD_MAX_CONNECTIONS}`,
  ].join(' ');
  const shell = [
    // pipefail: a missing or undecodable guard must stop the pod, not start vLLM unguarded-looking.
    'set -u -o pipefail',
    // First line of output: proves the start command ran as a shell (`up` fails fast without it).
    `echo "runpod-llm: start guard v${guardVersion(guardSource)}"`,
    'guard="${TMPDIR:-/tmp}/runpod-llm-guard.py"',
    `${GUARD_DECODE_COMMAND} > "$guard" || exit 70`,
    // No --api-key: vLLM reads VLLM_API_KEY from its environment, so the key is on no command
    // line, neither in RunPod's args nor in the container's process list.
    `vllm serve ${vllm} &`,
    'vllm_pid=$!',
    // The lease file is on the container disk, which a restart in place keeps (guard.py).
    `GUARD_LEASE_FILE="\${TMPDIR:-/tmp}/runpod-llm-guard.lease" ${guardEnv} python3 "$guard" &`,
    'guard_pid=$!',
    // bash as PID 1 ignores an untrapped SIGTERM: pass RunPod's stop on instead of waiting for SIGKILL.
    `trap 'kill "$vllm_pid" "$guard_pid" 2>/dev/null; exit 143' TERM INT`,
    'wait -n',
    'status=$?',
    'who=guard; kill -0 "$vllm_pid" 2>/dev/null || who=vLLM',
    'kill "$vllm_pid" "$guard_pid" 2>/dev/null',
    // RunPod restarts an exited container in place, for ever: a vLLM that cannot run would reload,
    // crash and bill in a loop. Stop the pod through the API instead, and wait for RunPod's SIGTERM
    // (up to 5 minutes); exit into the restart only when that stop fails.
    `if python3 "$guard" --stop-self "$who exited with status $status"; then`,
    '  for _ in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & wait $!; done',
    'fi',
    'exit "$status"',
  ].join('\n');
  return {
    args: JSON.stringify({ entrypoint: ['bash', '-c'], cmd: [shell] }),
    env: { ...commonEnv(input), ...selfStopEnv(input.selfStop), [GUARD_ENV]: encodeGuardEnv(guardSource) },
  };
}

/**
 * Plain `vllm serve` arguments for the image's own entrypoint, vLLM itself on the exposed port.
 * RunPod does not document how it splits `args`, so every value must be a single safe word.
 *
 * @example
 *   unguardedPodStart({ model: 'Qwen/Qwen3-8B', servedName: 'qwen3', maxModelLen: 8192,
 *     gpuMemoryUtilization: 0.9, podKey }).args
 *   // 'Qwen/Qwen3-8B --host 0.0.0.0 --port 8000 --served-model-name qwen3 --max-model-len 8192 --gpu-memory-utilization 0.90'
 */
export function unguardedPodStart(input: PodRecipeInput): PodStart {
  checkInput(input);
  const args = vllmArgs(input, '0.0.0.0', EXPOSED_PORT);
  const unsafe = args.find((a) => !SAFE_WORD.test(a));
  if (unsafe !== undefined) {
    throw new TypeError(
      `unguarded pod arguments cannot be quoted; ${JSON.stringify(unsafe)} must match ${String(SAFE_WORD)}`,
    );
  }
  return { args: args.join(' '), env: commonEnv(input) };
}

function vllmArgs(input: PodRecipeInput, host: string, port: number): string[] {
  return [
    input.model,
    '--host',
    host,
    '--port',
    String(port),
    '--served-model-name',
    input.servedName,
    '--max-model-len',
    String(input.maxModelLen),
    '--gpu-memory-utilization',
    input.gpuMemoryUtilization.toFixed(2),
    ...(input.extraArgs ?? []),
  ];
}

/** The guard's self-stop settings, as its env (GUARD_LEASE_SECONDS, GUARD_STOP_AT, GUARD_RUNPOD_API_URL). */
function selfStopEnv(selfStop: SelfStop | undefined): Record<string, string> {
  if (selfStop === undefined || (selfStop.leaseSeconds === null && selfStop.stopAtSeconds === null))
    return {};
  for (const [name, value] of [
    ['leaseSeconds', selfStop.leaseSeconds],
    ['stopAtSeconds', selfStop.stopAtSeconds],
  ] as const) {
    if (value !== null && (!Number.isInteger(value) || value <= 0))
      throw new TypeError(`selfStop.${name} must be a positive integer, got ${value}`);
  }
  if (!/^https?:\/\/[^/]/.test(selfStop.runpodApiUrl))
    throw new TypeError(`selfStop.runpodApiUrl must be http(s): ${selfStop.runpodApiUrl}`);
  return {
    ...(selfStop.leaseSeconds === null ? {} : { GUARD_LEASE_SECONDS: String(selfStop.leaseSeconds) }),
    ...(selfStop.stopAtSeconds === null ? {} : { GUARD_STOP_AT: String(selfStop.stopAtSeconds) }),
    GUARD_RUNPOD_API_URL: selfStop.runpodApiUrl,
  };
}

/** vLLM reads `VLLM_API_KEY` when `--api-key` is absent (api_server.py); the guard gets it too. */
function commonEnv(input: PodRecipeInput): Record<string, string> {
  const env: Record<string, string> = { VLLM_API_KEY: input.podKey };
  if (input.hfToken !== undefined && input.hfToken !== '') env.HF_TOKEN = input.hfToken;
  return env;
}

function checkInput(input: PodRecipeInput): void {
  for (const [name, value] of [
    ['model', input.model],
    ['servedName', input.servedName],
  ] as const) {
    // A leading '-' would be read by vLLM as an option, not as the value.
    if (value === '' || value.startsWith('-'))
      throw new TypeError(`${name} must be non-empty and not start with '-': ${JSON.stringify(value)}`);
  }
  if (!Number.isInteger(input.maxModelLen) || input.maxModelLen <= 0)
    throw new TypeError(`maxModelLen must be a positive integer, got ${input.maxModelLen}`);
  if (!(input.gpuMemoryUtilization > 0 && input.gpuMemoryUtilization <= 1)) {
    throw new TypeError(`gpuMemoryUtilization must be in (0, 1], got ${input.gpuMemoryUtilization}`);
  }
  if (input.podKey.length < 16) throw new TypeError('podKey must be at least 16 characters');
}
