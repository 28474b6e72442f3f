import { jsonStartShell, parseVllmLaunch, tokenize, type VllmLaunch } from './pod-args.js';
import type { PodRecord } from './pod-record.js';

/**
 * What a pod's container runs, read from its image and start command the way RunPod runs them:
 * whether the image has an entrypoint, the shell of a JSON start command, what vLLM will serve.
 */

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
  const script =
    (words[0] === 'bash' || words[0] === 'sh' || words[0] === '/bin/bash' || words[0] === '/bin/sh') &&
    words[1] === '-c'
      ? (words[2] ?? '')
      : args;
  const packed =
    /^echo ([A-Za-z0-9+/=]+) \| base64 (?:-d|--decode) > (\S+) && (?:exec )?(?:bash|sh) \2$/.exec(
      script.trim(),
    );
  return packed === null ? script : Buffer.from(packed[1] ?? '', 'base64').toString('utf8');
}

/** What vLLM will serve, read from whatever form the start command has. */
export function launchOf(image: string, args: string, env: Record<string, string>): VllmLaunch {
  if (hasEntrypoint(image)) return parseVllmLaunch(args, env);
  return parseVllmLaunch(
    JSON.stringify({ entrypoint: ['bash', '-c'], cmd: [containerShell(image, args, 'json') ?? ''] }),
    env,
  );
}

/** Images whose entrypoint is `vllm serve` (the stock vLLM OpenAI image and derivatives). */
export function isVllmImage(image: string): boolean {
  return /vllm/i.test(image);
}

/** The exposed HTTP port vLLM listens on (its --port if exposed, else the first HTTP port). */
export function standinPort(pod: PodRecord): number | undefined {
  const http = pod.request.ports.filter((p) => p.endsWith('/http')).map((p) => Number(p.split('/')[0]));
  return http.includes(pod.launch.port) ? pod.launch.port : http[0];
}
