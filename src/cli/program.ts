import { Command, CommanderError, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { isAppError } from '../shared/errors.js';
import { ownVersion } from '../shared/own-package.js';
import * as C from './command-options.js';
import { registerSecurityCommands } from './commands/security.js';
import { registerServiceCommands } from './commands/service.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { type CliIo, line } from './io.js';

/**
 * The command line: parses `argv`, runs one command, returns its exit code. Errors are printed
 * as one line of cause plus one line of fix — never a stack trace (RUNPOD_LLM_DEBUG=1 adds it).
 *
 * The flags are declared in `command-options.ts` (typed from the declarations). Each command's
 * module is imported inside its action, so a command loads only what it uses:
 * the long-running gateway process does not carry the lifecycle code, the emulator or the demo's
 * OpenAI SDK, and every command starts faster.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = EXIT.OK;
  const program = new Command()
    .name('runpod-llm')
    .description(
      'A private, cost-capped LLM for your IDE: vLLM on RunPod behind a hardened OpenAI-compatible gateway',
    )
    .version(ownVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(run `runpod-llm --help` for usage)');

  // addCommand, unlike command(), copies nothing from the parent: without the parent's exit
  // override and output, a usage error would exit the process itself with 1.
  const mount = (command: CommandUnknownOpts): void => {
    program.addCommand(command.copyInheritedSettings(program));
  };

  mount(
    C.gatewayCommand().action(async (flags) => {
      code = await (await import('./commands/gateway.js')).runGatewayCommand(flags, io);
    }),
  );
  mount(
    C.upCommand().action(async (flags) => {
      code = await (await import('./commands/up.js')).runUpCommand(flags, io);
    }),
  );
  mount(
    C.downCommand().action(async (flags) => {
      code = await (await import('./commands/down.js')).runDownCommand(flags, io);
    }),
  );
  mount(
    C.purgeCommand().action(async (flags) => {
      code = await (await import('./commands/purge.js')).runPurgeCommand(flags, io);
    }),
  );
  mount(
    C.statusCommand().action(async (flags) => {
      code = await (await import('./commands/status.js')).runStatusCommand(flags, io);
    }),
  );
  mount(
    C.watchCommand().action(async (flags) => {
      code = await (await import('./commands/watch.js')).runWatchCommand(flags, io);
    }),
  );
  mount(
    C.doctorCommand().action(async (flags) => {
      code = await (await import('./commands/doctor.js')).runDoctorCommand(flags, io);
    }),
  );
  mount(
    C.catalogCommand().action(async (flags) => {
      code = await (await import('./commands/catalog.js')).runCatalogCommand(flags, io);
    }),
  );
  mount(
    C.ideConfigCommand().action(async (client, flags) => {
      code = await (await import('./commands/ide-config.js')).runIdeConfigCommand(client, flags, io);
    }),
  );
  mount(
    C.emulatorCommand().action(async (flags) => {
      code = await (await import('./commands/emulator.js')).runEmulatorCommand(flags, io);
    }),
  );

  registerSecurityCommands(program, io, (n) => {
    code = n;
  });

  registerServiceCommands(program, io, (n) => {
    code = n;
  });

  mount(
    C.demoCommand().action(async (flags) => {
      code = await (await import('./commands/demo.js')).runDemoCommand(io, flags);
    }),
  );

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
  if (io.env.RUNPOD_LLM_DEBUG === '1' && err instanceof Error && err.stack !== undefined)
    line(io.stderr, err.stack);
  return exitCodeFor(err);
}
