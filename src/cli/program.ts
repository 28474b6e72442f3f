import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isAppError } from '../shared/errors.js';
import { ownVersion } from '../shared/own-package.js';
import { registerSecurityCommands } from './commands/security.js';
import { registerServiceCommands } from './commands/service.js';
import { IDE_CLIENTS } from './ide-snippets.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { type CliIo, line } from './io.js';

/**
 * The command line: parses `argv`, runs one command, returns its exit code. Errors are printed
 * as one line of cause plus one line of fix — never a stack trace (RUNPOD_LLM_DEBUG=1 adds it).
 *
 * Each command's module is imported inside its action, so a command loads only what it uses:
 * the long-running gateway process does not carry the lifecycle code, the emulator or the demo's
 * OpenAI SDK, and every command starts faster.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = EXIT.OK;
  const program = new Command()
    .name('runpod-llm')
    .description('A private, cost-capped LLM for your IDE: vLLM on RunPod behind a hardened OpenAI-compatible gateway')
    .version(ownVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(run `runpod-llm --help` for usage)');

  program
    .command('gateway')
    .description('serve the OpenAI-compatible gateway (default http://127.0.0.1:8000/v1)')
    .option('--host <host>', 'address to bind (env HOST)')
    .addOption(new Option('--port <port>', 'port to listen on (env PORT)').argParser(parsePort))
    .option('--config <file>', 'config file (default ./runpod-llm.json if present)')
    .option('--upstream <url>', 'OpenAI-compatible base URL ending in /v1 (env UPSTREAM_URL)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .option('--service', 'run under a service manager (`runpod-llm service install`): `up` reuses this gateway, `down` leaves it')
    .action(async (flags) => {
      code = await (await import('./commands/gateway.js')).runGatewayCommand(flags, io);
    });

  program
    .command('up')
    .description('start a vLLM pod on RunPod, wait until it answers, then serve it through the gateway under a watchdog')
    .option('--model <id>', 'Hugging Face model id (env RUNPOD_LLM_MODEL)')
    .option('--gpu <id>', 'GPU type id to try, in order; repeat for fallbacks (see `catalog`)', collect)
    .addOption(new Option('--min-vram <gb>', 'VRAM the model needs, when the catalog chooses').argParser(parseNumber))
    .addOption(new Option('--cloud <cloud>', 'SECURE or COMMUNITY').choices(['SECURE', 'COMMUNITY']))
    .option('--runtime <duration>', 'terminate after this long, e.g. 1h (or "off")')
    .option('--idle <duration>', 'idle limit with no gateway request, e.g. 15m (or "off")')
    .addOption(new Option('--idle-action <action>', 'what idleness does').choices(['stop', 'terminate']))
    .addOption(new Option('--budget <usd>', 'USD cap for this run, e.g. 5.00').argParser(parseNumber))
    .option('--readiness-timeout <duration>', 'give up (and terminate) if not ready after this long (default 20m)')
    .addOption(new Option('--replicas <n>', 'keep this many pods ready; the gateway spreads requests over them (default 1)').argParser(parseCount))
    .option('--unguarded', 'no guard in front of vLLM: its open routes (/invocations, /tokenize, …) become public (not recommended)')
    .option('--image <image>', 'vLLM image with a pinned tag (env RUNPOD_LLM_VLLM_IMAGE); an image without an entrypoint (docker/vllm-noentry) when RunPod ignores the JSON start command')
    .option('--dry-run', 'print the plan (GPU, $/h, worst case) and change nothing')
    .option('--json', 'with --dry-run: the plan as JSON')
    .option('--no-gateway', 'do not start the gateway (run `runpod-llm gateway` yourself)')
    .option('--no-watchdog', 'do not start the watchdog loop (use `runpod-llm watch` from cron)')
    .option('--config <file>', 'config file (default ./runpod-llm.json if present)')
    .action(async (flags) => {
      code = await (await import('./commands/up.js')).runUpCommand(flags, io);
    });

  program
    .command('down')
    .description('terminate the pod(s) (or --stop them), stop the watchdog and the gateway, clear the routes')
    .option('--stop', 'stop instead of terminating (keeps the volume; `up` resumes)')
    .option('--json', 'the outcome as JSON')
    .option('--config <file>', 'config file')
    .action(async (flags) => {
      code = await (await import('./commands/down.js')).runDownCommand(flags, io);
    });

  program
    .command('purge')
    .description('remove what the tool keeps: log files, the disk cache, ended runs (never a running pod\'s state)')
    .option('--logs', 'log files (files a running daemon writes are emptied)')
    .option('--cache', 'the disk cache (cache_dir)')
    .option('--runs', "ended runs with their pods and audit lines (this month's spend stays for the budgets)")
    .option('--all', 'all of the above')
    .option('--dry-run', 'say what would go and remove nothing')
    .option('--json', 'what was removed, as JSON')
    .option('--config <file>', 'config file')
    .action(async (flags) => {
      code = await (await import('./commands/purge.js')).runPurgeCommand(flags, io);
    });

  program
    .command('status')
    .description('pod, GPU, $/h, uptime, cost so far, time and budget left, idle time, gateway health')
    .option('--json', 'as JSON')
    .option('--config <file>', 'config file')
    .action(async (flags) => {
      code = await (await import('./commands/status.js')).runStatusCommand(flags, io);
    });

  program
    .command('watch')
    .description('one watchdog pass (for cron), or --loop: enforce runtime, idle and budget limits, recreate dead pods')
    .option('--loop', 'keep watching (the daemon `up` starts)')
    .option('--interval <duration>', 'time between passes with --loop, e.g. 30s')
    .option('--reap', 'terminate orphans (runpod-llm-* pods of this install the state does not know; never another install\'s)')
    .option('--service', 'with --loop: run under a service manager (`runpod-llm service install`): keep running with nothing to watch')
    .option('--json', 'the pass report as JSON')
    .option('--config <file>', 'config file')
    .action(async (flags) => {
      code = await (await import('./commands/watch.js')).runWatchCommand(flags, io);
    });

  program
    .command('doctor')
    .description('read-only checks (RunPod key, API, catalog, rate limits, clock, state permissions, gateway, watchdog); --live settles what the API does with a CPU pod')
    .option('--live', 'create one CPU pod for under two minutes (about $0.002) to test the JSON start command and pod self-stop; asks first')
    .option('--yes', 'with --live: agree without a prompt (scripts)')
    .option('--image <ref>', `with --live: the probe image (an ENTRYPOINT of its own, python3 and sh; default certbot/certbot:v2.11.0)`)
    .option('--json', 'as JSON')
    .option('--config <file>', 'config file')
    .action(async (flags) => {
      code = await (await import('./commands/doctor.js')).runDoctorCommand(flags, io);
    });

  program
    .command('catalog')
    .description('GPU types with VRAM, $/h and stock; checks the configured GPU ids')
    .option('--json', 'as JSON')
    .addOption(new Option('--min-vram <gb>', 'only types with at least this much VRAM').argParser(parseNumber))
    .addOption(new Option('--cloud <cloud>', 'stock on SECURE or COMMUNITY').choices(['SECURE', 'COMMUNITY']))
    .option('--config <file>', 'config file')
    .action(async (flags) => {
      code = await (await import('./commands/catalog.js')).runCatalogCommand(flags, io);
    });

  program
    .command('ide-config')
    .description(`print a working IDE snippet for the running gateway (${IDE_CLIENTS.join('|')})`)
    .argument('<client>', IDE_CLIENTS.join('|'))
    .option('--config <file>', 'config file')
    .action(async (client: string, flags) => {
      code = await (await import('./commands/ide-config.js')).runIdeConfigCommand(client, flags, io);
    });

  program
    .command('emulator')
    .description('a local RunPod (REST v2 + pod proxy with vLLM stand-ins) for trying everything with no account')
    .addOption(new Option('--port <port>', 'API port (default: any free port)').argParser(parsePort))
    .addOption(new Option('--proxy-port <port>', 'pod proxy port (default: any free port)').argParser(parsePort))
    .option('--host <host>', 'address to bind (default 127.0.0.1)')
    .addOption(new Option('--speed <factor>', 'run the pod schedule this many times faster').argParser(parseNumber))
    .addOption(new Option('--args-mode <mode>', 'json: the JSON start command in args is honoured; plain: passed as plain args to the image entrypoint (env EMULATOR_ARGS_MODE)').choices(['json', 'plain']))
    .addOption(new Option('--on-exit <what>', 'a container whose process exits: restart in place (live behaviour) or exit (pod EXITED)').choices(['restart', 'exit']))
    .addOption(new Option('--foreign-pods <n>', "other tools' pods with off-spec values on the account (default 0)").argParser(parseNumber))
    .option('--pod-key-cannot-stop', "pod-scoped keys may read but not stop their own pod (403)")
    .addOption(new Option('--slow-create <ms>', 'every create is held this long before the pod exists and the answer is sent').argParser(parseNumber))
    .action(async (flags) => {
      code = await (await import('./commands/emulator.js')).runEmulatorCommand(flags, io);
    });

  registerSecurityCommands(program, io, (n) => {
    code = n;
  });

  registerServiceCommands(program, io, (n) => {
    code = n;
  });

  program
    .command('demo')
    .description('the whole flow on this machine: no account, no money')
    .addOption(new Option('--speed <factor>', 'run the emulated pod start-up this many times faster').argParser(parseNumber))
    .action(async (flags: { speed?: number }) => {
      code = await (await import('./commands/demo.js')).runDemoCommand(io, flags);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    return reportError(err, io);
  }
}

export function reportError(err: unknown, io: CliIo): number {
  if (isAppError(err)) {
    line(io.stderr, `error: ${err.message}`);
    if (err.hint !== undefined) line(io.stderr, `fix: ${err.hint}`);
  } else {
    line(io.stderr, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    line(io.stderr, 'this is a bug in runpod-llm: please report it with RUNPOD_LLM_DEBUG=1 output');
  }
  if (io.env.RUNPOD_LLM_DEBUG === '1' && err instanceof Error && err.stack !== undefined) line(io.stderr, err.stack);
  return exitCodeFor(err);
}

function parseNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number, e.g. 24 or 5.00');
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


