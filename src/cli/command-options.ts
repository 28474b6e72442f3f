import { Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { IDE_CLIENTS } from './ide-snippets.js';

/**
 * Each command's flags, declared once: `program.ts` mounts these commands, and each command's
 * flag type is inferred from the declaration (`@commander-js/extra-typings`: value parsers give
 * numbers, `choices` give literal unions, `--no-x` gives a boolean), so a flag declared here and
 * the field its command reads cannot drift apart. Only commander is loaded here; the commands'
 * modules are imported when they run.
 *
 * The types are `Partial`: commands are also called from code (`demo`, tests) with some flags.
 *
 * @example
 *   gatewayCommand().action(async (flags) => runGatewayCommand(flags, io)); // flags: { port?: number, … }
 */
type FlagsOf<F extends () => { opts(): object }> = Partial<ReturnType<ReturnType<F>['opts']>>;

const CONFIG = ['--config <file>', 'config file'] as const;

export function gatewayCommand() {
  return new Command('gateway')
    .description('serve the OpenAI-compatible gateway (default http://127.0.0.1:8000/v1)')
    .option('--host <host>', 'address to bind (env HOST)')
    .addOption(new Option('--port <port>', 'port to listen on (env PORT)').argParser(parsePort))
    .option('--config <file>', 'config file (default ./runpod-llm.json if present)')
    .option('--upstream <url>', 'OpenAI-compatible base URL ending in /v1 (env UPSTREAM_URL)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .option(
      '--service',
      'run under a service manager (`runpod-llm service install`): `up` reuses this gateway, `down` leaves it',
    );
}
export type GatewayFlags = FlagsOf<typeof gatewayCommand>;

export function upCommand() {
  return new Command('up')
    .description(
      'start a vLLM pod on RunPod, wait until it answers, then serve it through the gateway under a watchdog',
    )
    .option('--model <id>', 'Hugging Face model id (env RUNPOD_LLM_MODEL)')
    .option('--gpu <id>', 'GPU type id to try, in order; repeat for fallbacks (see `catalog`)', collect)
    .addOption(
      new Option('--min-vram <gb>', 'VRAM the model needs, when the catalog chooses').argParser(parseNumber),
    )
    .addOption(new Option('--cloud <cloud>', 'SECURE or COMMUNITY').choices(['SECURE', 'COMMUNITY'] as const))
    .option('--runtime <duration>', 'terminate after this long, e.g. 1h (or "off")')
    .option('--idle <duration>', 'idle limit with no gateway request, e.g. 15m (or "off")')
    .addOption(
      new Option('--idle-action <action>', 'what idleness does').choices(['stop', 'terminate'] as const),
    )
    .addOption(new Option('--budget <usd>', 'USD cap for this run, e.g. 5.00').argParser(parseNumber))
    .option(
      '--readiness-timeout <duration>',
      'give up (and terminate) if not ready after this long (default 20m)',
    )
    .addOption(
      new Option(
        '--replicas <n>',
        'keep this many pods ready; the gateway spreads requests over them (default 1)',
      ).argParser(parseCount),
    )
    .option(
      '--unguarded',
      'no guard in front of vLLM: its open routes (/invocations, /tokenize, …) become public (not recommended)',
    )
    .option(
      '--image <image>',
      'vLLM image with a pinned tag (env RUNPOD_LLM_VLLM_IMAGE); an image without an entrypoint (docker/vllm-noentry) when RunPod ignores the JSON start command',
    )
    .option('--dry-run', 'print the plan (GPU, $/h, worst case) and change nothing')
    .option('--json', 'with --dry-run: the plan as JSON')
    .option('--no-gateway', 'do not start the gateway (run `runpod-llm gateway` yourself)')
    .option('--no-watchdog', 'do not start the watchdog loop (use `runpod-llm watch` from cron)')
    .option('--config <file>', 'config file (default ./runpod-llm.json if present)');
}
export type UpFlags = FlagsOf<typeof upCommand>;

export function downCommand() {
  return new Command('down')
    .description('terminate the pod(s) (or --stop them), stop the watchdog and the gateway, clear the routes')
    .option('--stop', 'stop instead of terminating (keeps the volume; `up` resumes)')
    .option('--json', 'the outcome as JSON')
    .option(...CONFIG);
}
export type DownFlags = FlagsOf<typeof downCommand>;

export function purgeCommand() {
  return new Command('purge')
    .description(
      "remove what the tool keeps: log files, the disk cache, ended runs (never a running pod's state)",
    )
    .option('--logs', 'log files (files a running daemon writes are emptied)')
    .option('--cache', 'the disk cache (cache_dir)')
    .option('--runs', "ended runs with their pods and audit lines (this month's spend stays for the budgets)")
    .option('--all', 'all of the above')
    .option('--dry-run', 'say what would go and remove nothing')
    .option('--json', 'what was removed, as JSON')
    .option(...CONFIG);
}
export type PurgeFlags = FlagsOf<typeof purgeCommand>;

export function statusCommand() {
  return new Command('status')
    .description('pod, GPU, $/h, uptime, cost so far, time and budget left, idle time, gateway health')
    .option('--json', 'as JSON')
    .option(...CONFIG);
}
export type StatusFlags = FlagsOf<typeof statusCommand>;

export function watchCommand() {
  return new Command('watch')
    .description(
      'one watchdog pass (for cron), or --loop: enforce runtime, idle and budget limits, recreate dead pods',
    )
    .option('--loop', 'keep watching (the daemon `up` starts)')
    .option('--interval <duration>', 'time between passes with --loop, e.g. 30s')
    .option(
      '--reap',
      "terminate orphans (runpod-llm-* pods of this install the state does not know; never another install's)",
    )
    .option(
      '--service',
      'with --loop: run under a service manager (`runpod-llm service install`): keep running with nothing to watch',
    )
    .option('--json', 'the pass report as JSON')
    .option(...CONFIG);
}
export type WatchFlags = FlagsOf<typeof watchCommand>;

export function doctorCommand() {
  return new Command('doctor')
    .description(
      'read-only checks (RunPod key, API, catalog, rate limits, clock, state permissions, gateway, watchdog); --live settles what the API does with a CPU pod',
    )
    .option(
      '--live',
      'create one CPU pod for under two minutes (about $0.002) to test the JSON start command and pod self-stop; asks first',
    )
    .option('--yes', 'with --live: agree without a prompt (scripts)')
    .option(
      '--image <ref>',
      'with --live: the probe image (an ENTRYPOINT of its own, python3 and sh; default certbot/certbot:v2.11.0)',
    )
    .option('--json', 'as JSON')
    .option(...CONFIG);
}
export type DoctorFlags = FlagsOf<typeof doctorCommand>;

export function catalogCommand() {
  return new Command('catalog')
    .description('GPU types with VRAM, $/h and stock; checks the configured GPU ids')
    .option('--json', 'as JSON')
    .addOption(
      new Option('--min-vram <gb>', 'only types with at least this much VRAM').argParser(parseNumber),
    )
    .addOption(
      new Option('--cloud <cloud>', 'stock on SECURE or COMMUNITY').choices(['SECURE', 'COMMUNITY'] as const),
    )
    .option(...CONFIG);
}
export type CatalogFlags = FlagsOf<typeof catalogCommand>;

export function ideConfigCommand() {
  return new Command('ide-config')
    .description(`print a working IDE snippet for the running gateway (${IDE_CLIENTS.join('|')})`)
    .argument('<client>', IDE_CLIENTS.join('|'))
    .option(...CONFIG);
}
export type IdeConfigFlags = FlagsOf<typeof ideConfigCommand>;

export function emulatorCommand() {
  return new Command('emulator')
    .description(
      'a local RunPod (REST v2 + pod proxy with vLLM stand-ins) for trying everything with no account',
    )
    .addOption(new Option('--port <port>', 'API port (default: any free port)').argParser(parsePort))
    .addOption(
      new Option('--proxy-port <port>', 'pod proxy port (default: any free port)').argParser(parsePort),
    )
    .option('--host <host>', 'address to bind (default 127.0.0.1)')
    .addOption(
      new Option('--speed <factor>', 'run the pod schedule this many times faster').argParser(parseNumber),
    )
    .addOption(
      new Option(
        '--args-mode <mode>',
        'json: the JSON start command in args is honoured; plain: passed as plain args to the image entrypoint (env EMULATOR_ARGS_MODE)',
      ).choices(['json', 'plain'] as const),
    )
    .addOption(
      new Option(
        '--on-exit <what>',
        'a container whose process exits: restart in place (live behaviour) or exit (pod EXITED)',
      ).choices(['restart', 'exit'] as const),
    )
    .addOption(
      new Option(
        '--foreign-pods <n>',
        "other tools' pods with off-spec values on the account (default 0)",
      ).argParser(parseNumber),
    )
    .option('--pod-key-cannot-stop', 'pod-scoped keys may read but not stop their own pod (403)')
    .addOption(
      new Option(
        '--slow-create <ms>',
        'every create is held this long before the pod exists and the answer is sent',
      ).argParser(parseNumber),
    );
}
/** `apiKey` is not a flag: the demo and tests pass one (default: a fresh random key). */
export type EmulatorFlags = FlagsOf<typeof emulatorCommand> & { apiKey?: string };

export function demoCommand() {
  return new Command('demo')
    .description('the whole flow on this machine: no account, no money')
    .addOption(
      new Option('--speed <factor>', 'run the emulated pod start-up this many times faster').argParser(
        parseNumber,
      ),
    );
}
export type DemoFlags = FlagsOf<typeof demoCommand>;

function parseNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n))
    throw new InvalidArgumentError('expected a number, e.g. 24 or 5.00');
  return n;
}

/** Repeatable option: `--gpu A --gpu B` → ['A', 'B'] (undefined when absent, so config applies). */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return port;
}
