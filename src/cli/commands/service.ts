import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, Option } from '@commander-js/extra-typings';
import { currentSelf, type SelfCommand } from '../../daemons/detached-process.js';
import type { ServiceName, ServiceSpec } from '../../daemons/service-units.js';
import { EXIT } from '../exit-codes.js';
import { type CliIo, line } from '../io.js';
import { loadManagerContext } from '../manager-context.js';

const kindOption = () =>
  new Option('--kind <kind>', 'service manager (default: systemd on Linux, launchd on macOS)').choices([
    'systemd',
    'launchd',
  ] as const);

function installCommand() {
  return new Command('install')
    .description('write the service files (no secrets in them) and start the services')
    .addOption(kindOption())
    .option('--dry-run', 'print the files and change nothing')
    .option('--no-start', 'write the files only (review them, then enable them yourself)')
    .option('--no-gateway', 'the watchdog only (run the gateway yourself)')
    .option('--json', 'the outcome as JSON')
    .option('--config <file>', 'config file the services read');
}

/** `uninstall` and `status` take the same flags. */
function readCommand(name: 'uninstall' | 'status', description: string, json: string) {
  return new Command(name)
    .description(description)
    .addOption(kindOption())
    .option('--json', json)
    .option('--config <file>', 'config file');
}

/** The flags of `install`, typed from its declaration (`uninstall` and `status` take a subset). */
type InstallFlags = Partial<ReturnType<ReturnType<typeof installCommand>['opts']>>;
type ServiceFlags = Partial<ReturnType<ReturnType<typeof readCommand>['opts']>> &
  Pick<InstallFlags, 'gateway'>;

/**
 * `runpod-llm service install|uninstall|status`: the watchdog loop and the gateway
 * as user services (systemd user units, launchd agents) that restart when they die and come back
 * after a reboot.
 */
export function registerServiceCommands(program: Command, io: CliIo, setCode: (n: number) => void): void {
  const service = program
    .command('service')
    .description(
      'run the watchdog and the gateway as user services (systemd --user, launchd) that restart on failure and survive logout and reboot',
    );
  service.addCommand(
    installCommand()
      .action(async (flags) => setCode(await install(flags, io)))
      .copyInheritedSettings(service),
  );
  service.addCommand(
    readCommand(
      'uninstall',
      'stop and disable the services and remove their files (and the 0600 environment files)',
      'the outcome as JSON',
    )
      .action(async (flags) => setCode(await uninstall(flags, io)))
      .copyInheritedSettings(service),
  );
  service.addCommand(
    readCommand(
      'status',
      'are the service files installed, enabled and running (and lingering on)',
      'as JSON',
    )
      .action(async (flags) => setCode(await status(flags, io)))
      .copyInheritedSettings(service),
  );
}

async function specFor(flags: ServiceFlags, io: CliIo): Promise<ServiceSpec> {
  const { defaultServiceKind } = await import('../../daemons/service-manager.js');
  const ctx = loadManagerContext(io, {}, flags.config);
  const kind = flags.kind ?? defaultServiceKind(process.platform);
  const services: ServiceName[] = flags.gateway === false ? ['watchdog'] : ['watchdog', 'gateway'];
  const xdg = io.env.XDG_CONFIG_HOME;
  return {
    kind,
    home: resolve(ctx.home),
    ...(ctx.file === undefined ? {} : { configFile: resolve(ctx.file) }),
    workingDirectory: process.cwd(),
    self: absoluteSelf(io.self ?? currentSelf()),
    userHome: io.env.HOME ?? homedir(),
    ...(xdg === undefined || xdg === '' ? {} : { xdgConfigHome: xdg }),
    services,
  };
}

/**
 * A service starts in another directory: the entry script must be an absolute path, and a
 * loader (`--import tsx` when run from a checkout) a resolved URL.
 */
function absoluteSelf(self: SelfCommand): SelfCommand {
  const args = self.args.map((a, i) => {
    if (self.args[i - 1] === '--import' && !a.startsWith('.') && !isAbsolute(a) && !a.includes(':'))
      return resolveSpecifier(a);
    return !a.startsWith('-') && !isAbsolute(a) && existsSync(a) ? resolve(a) : a;
  });
  return { command: self.command, args };
}

function resolveSpecifier(specifier: string): string {
  try {
    return import.meta.resolve(specifier, pathToFileURL(`${process.cwd()}/`).href);
  } catch {
    return specifier;
  }
}

async function host(io: CliIo) {
  const { systemServiceHost } = await import('../../daemons/service-manager.js');
  return systemServiceHost(process.getuid?.() ?? 0, io.env.USER ?? userInfo().username);
}

async function install(flags: InstallFlags, io: CliIo): Promise<number> {
  const { installServices, plannedEnvFiles } = await import('../../daemons/service-manager.js');
  const { serviceFiles } = await import('../../daemons/service-units.js');
  const spec = await specFor(flags, io);
  const out = (t = ''): void => line(io.stdout, t);
  if (flags.dryRun === true) {
    const envs = plannedEnvFiles(spec, io.env);
    const files = serviceFiles({
      ...spec,
      envFiles: Object.fromEntries(envs.map((e) => [e.service, e.vars.length > 0])),
    });
    const envSummary = envs.map((e) => ({ service: e.service, path: e.path, names: e.vars.map(([n]) => n) }));
    if (flags.json === true) {
      out(JSON.stringify({ kind: spec.kind, files, envFiles: envSummary }, null, 2));
      return EXIT.OK;
    }
    for (const f of files) {
      out(`# ${f.path}`);
      io.stdout.write(f.content);
      out();
    }
    for (const e of envSummary)
      out(
        `# ${e.path} (0600; values not shown): ${e.names.length === 0 ? '(not written: nothing to put in it)' : e.names.join(', ')}`,
      );
    return EXIT.OK;
  }
  const result = await installServices(spec, io.env, await host(io), { start: flags.start !== false });
  if (
    spec.services?.includes('gateway') === true &&
    loadManagerContext(io, {}, flags.config).config.proxy_port === 0
  ) {
    result.warnings.push(
      'the gateway port is 0 (any free port): the service gateway gets a new port at each start and IDE settings would break; set a fixed port (PORT, or proxy_port in runpod-llm.json) and install again',
    );
  }
  for (const w of result.warnings) line(io.stderr, `warning: ${w}`);
  if (flags.json === true) {
    out(JSON.stringify(result, null, 2));
    return EXIT.OK;
  }
  for (const f of result.files) out(`wrote ${f.path}`);
  for (const e of result.envFiles) out(`wrote ${e.path} (0600): ${e.names.join(', ')}`);
  for (const r of result.replaced)
    out(`stopped the ${r.service} \`up\` had started (pid ${r.pid}): the service runs it now`);
  if (result.started) out(`started: ${result.commands.filter((c) => !c.includes('bootout')).join('; ')}`);
  else
    out(
      `not started (--no-start); to start: ${result.commands.filter((c) => !c.includes('bootout')).join('; ')}`,
    );
  out('check: runpod-llm service status');
  return EXIT.OK;
}

async function uninstall(flags: ServiceFlags, io: CliIo): Promise<number> {
  const { uninstallServices } = await import('../../daemons/service-manager.js');
  const result = await uninstallServices(await specFor(flags, io), await host(io));
  for (const w of result.warnings) line(io.stderr, `warning: ${w}`);
  if (flags.json === true) line(io.stdout, JSON.stringify(result, null, 2));
  else if (result.removed.length === 0) line(io.stdout, 'no service files were installed');
  else for (const p of result.removed) line(io.stdout, `removed ${p}`);
  return EXIT.OK;
}

async function status(flags: ServiceFlags, io: CliIo): Promise<number> {
  const { servicesStatus } = await import('../../daemons/service-manager.js');
  const result = await servicesStatus(await specFor(flags, io), io.env, await host(io));
  if (flags.json === true) {
    line(io.stdout, JSON.stringify(result, null, 2));
    return EXIT.OK;
  }
  const word = (v: boolean | null, yes: string, no: string): string =>
    v === null ? 'unknown' : v ? yes : no;
  for (const s of result.services) {
    if (!s.installed) {
      line(io.stdout, `${s.service}: not installed (${s.path})`);
      continue;
    }
    const daemon =
      s.daemon === null
        ? 'no pid file'
        : `pid ${s.daemon.pid} ${s.daemon.running ? 'running' : 'not running'}${s.daemon.service ? '' : ' (started by `up`, not by the service)'}`;
    line(
      io.stdout,
      `${s.service}: ${s.unit} ${word(s.enabled, 'enabled', 'disabled')}, ${word(s.active, 'active', 'inactive')}; ${daemon}${s.current === false ? '; the file differs from what install writes now: run `runpod-llm service install` again' : ''}`,
    );
    if (s.note !== undefined)
      line(io.stdout, `  (${result.kind === 'systemd' ? 'systemctl --user' : 'launchctl'}: ${s.note})`);
  }
  if (result.linger !== null)
    line(
      io.stdout,
      `lingering: ${result.linger}${result.linger === 'yes' ? '' : ` (\`loginctl enable-linger ${io.env.USER ?? userInfo().username}\` keeps the services running without a login)`}`,
    );
  return EXIT.OK;
}
