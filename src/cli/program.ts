import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isAppError } from '../shared/errors.js';
import { runDemoCommand } from './commands/demo.js';
import { runGatewayCommand } from './commands/gateway.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { type CliIo, line } from './io.js';

/**
 * The command line: parses `argv`, runs one command, returns its exit code. Errors are printed
 * as one line of cause plus one line of fix — never a stack trace (RUNPOD_LLM_DEBUG=1 adds it).
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = EXIT.OK;
  const program = new Command()
    .name('runpod-llm')
    .description('A private, cost-capped LLM for your IDE: vLLM on RunPod behind a hardened OpenAI-compatible gateway')
    .version(process.env.npm_package_version ?? '0.1.0')
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
    .action(async (flags) => {
      code = await runGatewayCommand(flags, io);
    });

  program
    .command('demo')
    .description('the whole flow on this machine: no account, no money')
    .action(async () => {
      code = await runDemoCommand(io);
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

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return port;
}


