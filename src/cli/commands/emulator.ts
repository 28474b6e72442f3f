import { once } from 'node:events';
import { startEmulator, type EmulatorOptions } from '../../emulator/emulator.js';
import { EXIT } from '../exit-codes.js';
import { type CliIo, line } from '../io.js';
import type { EmulatorFlags } from '../command-options.js';

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
  io: Pick<CliIo, 'stdout' | 'stderr'> & {
    signal?: AbortSignal;
    env?: Readonly<Record<string, string | undefined>>;
  },
): Promise<number> {
  const env = io.env ?? process.env;
  const options: EmulatorOptions = {};
  const idleLimit = env.EMULATOR_PROXY_IDLE_LIMIT;
  if (idleLimit !== undefined && idleLimit !== '') {
    const seconds = idleLimit === 'off' ? 0 : Number(idleLimit);
    if (!Number.isFinite(seconds) || seconds < 0) {
      line(
        io.stderr,
        `error: EMULATOR_PROXY_IDLE_LIMIT must be seconds (e.g. 100 or 2.5) or "off", got ${JSON.stringify(idleLimit.slice(0, 40))}`,
      );
      return EXIT.USAGE;
    }
    options.proxyIdleLimitMs = Math.round(seconds * 1000);
  }
  if (flags.port !== undefined) options.port = flags.port;
  if (flags.proxyPort !== undefined) options.proxyPort = flags.proxyPort;
  if (flags.host !== undefined) options.host = flags.host;
  if (flags.apiKey !== undefined) options.apiKey = flags.apiKey;
  if (flags.speed !== undefined) options.speed = flags.speed;
  const argsMode = flags.argsMode ?? env.EMULATOR_ARGS_MODE;
  if (argsMode !== undefined && argsMode !== 'json' && argsMode !== 'plain') {
    line(io.stderr, `error: EMULATOR_ARGS_MODE must be json or plain, got "${argsMode}"`);
    return EXIT.USAGE;
  }
  if (
    flags.foreignPods !== undefined &&
    !(Number.isInteger(flags.foreignPods) && flags.foreignPods >= 0 && flags.foreignPods <= 20)
  ) {
    line(io.stderr, '--foreign-pods must be an integer in 0..20');
    return EXIT.USAGE;
  }
  if (flags.slowCreate !== undefined && !(Number.isInteger(flags.slowCreate) && flags.slowCreate >= 0)) {
    line(io.stderr, '--slow-create must be a whole number of ms >= 0');
    return EXIT.USAGE;
  }
  options.behaviour = {
    ...(argsMode === undefined ? {} : { argsMode }),
    ...(flags.onExit === undefined ? {} : { onExit: flags.onExit }),
    ...(flags.podKeyCannotStop === true ? { podKeyCanStop: false } : {}),
    ...(flags.slowCreate === undefined || flags.slowCreate === 0
      ? {}
      : { slowCreate: { delayMs: flags.slowCreate, times: null } }),
  };
  if (flags.foreignPods !== undefined) options.foreignPods = flags.foreignPods;
  const emulator = await startEmulator(options);

  line(io.stdout, `RUNPOD_API_URL=${emulator.apiUrl}`);
  line(io.stdout, `RUNPOD_API_KEY=${emulator.apiKey}`);
  line(io.stdout, `RUNPOD_POD_URL_TEMPLATE=${emulator.podUrlTemplate}`);
  if (flags.host !== undefined && !LOOPBACK.has(flags.host)) {
    line(
      io.stderr,
      `warning: the emulator listens on ${flags.host}; its pod URLs have no authentication of their own, like RunPod's proxy`,
    );
  }
  const { provisioningMs, startingMs, loadMs } = emulator.schedule;
  line(
    io.stderr,
    `runpod-llm emulator running (pods: PROVISIONING ${provisioningMs} ms → STARTING ${startingMs} ms → RUNNING, model loads in ${loadMs} ms); Ctrl-C to stop`,
  );
  if (options.proxyIdleLimitMs !== undefined)
    line(
      io.stderr,
      `pod proxy: 524 after ${options.proxyIdleLimitMs === 0 ? 'never (limit off)' : `${options.proxyIdleLimitMs / 1000} s without a response byte`} (EMULATOR_PROXY_IDLE_LIMIT)`,
    );
  const b = emulator.faults.settings;
  line(
    io.stderr,
    `behaviour: JSON start command ${b.argsMode === 'json' ? 'honoured' : 'NOT honoured (plain args)'}, exited containers ${b.onExit === 'restart' ? 'restart in place' : 'become EXITED'}, pod-scoped keys ${b.podKeyCanStop ? 'can' : 'cannot'} stop their pod${b.slowCreate === null ? '' : `, creates take ${b.slowCreate.delayMs} ms`}${(flags.foreignPods ?? 0) > 0 ? `, ${flags.foreignPods} foreign pod(s)` : ''}`,
  );

  if (io.signal === undefined) await new Promise<never>(() => {});
  else if (!io.signal.aborted) await once(io.signal, 'abort');
  await emulator.close();
  line(io.stderr, 'emulator stopped');
  return 0;
}
