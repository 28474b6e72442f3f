import { once } from 'node:events';
import { startEmulator, type EmulatorOptions } from '../../emulator/emulator.js';
import { EXIT } from '../exit-codes.js';
import { type CliIo, line } from '../io.js';

export interface EmulatorFlags {
  /** API port (default 0: any free port). */
  port?: number;
  /** Pod proxy port (default 0). */
  proxyPort?: number;
  host?: string;
  /** Default: a fresh random key. */
  apiKey?: string;
  /** Runs the pod schedule this many times faster than the demo schedule (default 1). */
  speed?: number;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * `runpod-llm emulator`: a local RunPod (REST v2 API + pod proxy with vLLM stand-ins) in the
 * foreground until SIGINT/SIGTERM. Prints one `NAME=value` line per setting on stdout (the
 * environment variables the other commands read, ready to `export`); faults can be injected
 * from another shell with `POST $RUNPOD_API_URL/_emulator/faults` and the same key.
 * Returns the exit code; never exits by itself.
 */
export async function runEmulatorCommand(
  flags: EmulatorFlags,
  io: Pick<CliIo, 'stdout' | 'stderr'> & { signal?: AbortSignal; env?: NodeJS.ProcessEnv },
): Promise<number> {
  const options: EmulatorOptions = {};
  const idleLimit = io.env?.EMULATOR_PROXY_IDLE_LIMIT;
  if (idleLimit !== undefined && idleLimit !== '') {
    const seconds = idleLimit === 'off' ? 0 : Number(idleLimit);
    if (!Number.isFinite(seconds) || seconds < 0) {
      line(io.stderr, `error: EMULATOR_PROXY_IDLE_LIMIT must be seconds (e.g. 100 or 2.5) or "off", got ${JSON.stringify(idleLimit.slice(0, 40))}`);
      return EXIT.USAGE;
    }
    options.proxyIdleLimitMs = Math.round(seconds * 1000);
  }
  if (flags.port !== undefined) options.port = flags.port;
  if (flags.proxyPort !== undefined) options.proxyPort = flags.proxyPort;
  if (flags.host !== undefined) options.host = flags.host;
  if (flags.apiKey !== undefined) options.apiKey = flags.apiKey;
  if (flags.speed !== undefined) options.speed = flags.speed;
  const emulator = await startEmulator(options);

  line(io.stdout, `RUNPOD_API_URL=${emulator.apiUrl}`);
  line(io.stdout, `RUNPOD_API_KEY=${emulator.apiKey}`);
  line(io.stdout, `RUNPOD_POD_URL_TEMPLATE=${emulator.podUrlTemplate}`);
  if (flags.host !== undefined && !LOOPBACK.has(flags.host)) {
    line(io.stderr, `warning: the emulator listens on ${flags.host}; its pod URLs have no authentication of their own, like RunPod's proxy`);
  }
  const { provisioningMs, startingMs, loadMs } = emulator.schedule;
  line(io.stderr, `runpod-llm emulator running (pods: PROVISIONING ${provisioningMs} ms → STARTING ${startingMs} ms → RUNNING, model loads in ${loadMs} ms); Ctrl-C to stop`);
  if (options.proxyIdleLimitMs !== undefined) line(io.stderr, `pod proxy: 524 after ${options.proxyIdleLimitMs === 0 ? 'never (limit off)' : `${options.proxyIdleLimitMs / 1000} s without a response byte`} (EMULATOR_PROXY_IDLE_LIMIT)`);

  if (io.signal === undefined) await new Promise<never>(() => {});
  else if (!io.signal.aborted) await once(io.signal, 'abort');
  await emulator.close();
  line(io.stderr, 'emulator stopped');
  return 0;
}
