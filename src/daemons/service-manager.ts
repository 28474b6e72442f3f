import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AppError } from '../shared/errors.js';
import { writePrivateFile } from '../shared/secret-file.js';
import { type DaemonInfo, readDaemon, removePidFile, stopDaemon } from './detached-process.js';
import {
  envFileContent,
  envFilePath,
  SERVICE_NAMES,
  type ServiceFile,
  serviceEnv,
  serviceFiles,
  type ServiceKind,
  type ServiceName,
  type ServiceSpec,
  unitName,
  unitPath,
} from './service-units.js';

/*
 * `runpod-llm service install|uninstall|status`: writes the unit files of
 * service-units.ts and asks the user's service manager (systemctl --user, launchctl) to run them.
 * The service manager is reached through `ServiceHost.run`, so what runs is one place.
 */

/** The outcome of one service-manager command. */
export interface CommandResult {
  /** null: the command could not be run at all (not installed). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ServiceHost {
  run(command: string, args: readonly string[]): Promise<CommandResult>;
  uid: number;
  user: string;
}

/** Runs the real systemctl/launchctl/loginctl, with a time limit. */
export function systemServiceHost(uid: number, user: string): ServiceHost {
  return {
    uid,
    user,
    run: (command, args) =>
      new Promise((resolve) => {
        execFile(command, [...args], { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (err === null) return resolve({ code: 0, stdout, stderr });
          const e = err as NodeJS.ErrnoException & { code?: unknown };
          if (e.code === 'ENOENT')
            return resolve({ code: null, stdout: '', stderr: `${command}: not found` });
          resolve({
            code: typeof e.code === 'number' ? e.code : 1,
            stdout: String(stdout),
            stderr: String(stderr || err.message),
          });
        });
      }),
  };
}

export function defaultServiceKind(platform: NodeJS.Platform): ServiceKind {
  if (platform === 'linux') return 'systemd';
  if (platform === 'darwin') return 'launchd';
  throw new AppError(
    'MISSING_SERVICE_MANAGER',
    `no supported service manager on ${platform} (systemd user units on Linux, launchd agents on macOS)`,
    {
      hint: 'run `runpod-llm watch` from your scheduler every few minutes instead (it also revives a dead gateway)',
    },
  );
}

export interface InstallResult {
  kind: ServiceKind;
  files: Array<{ service: ServiceName; unit: string; path: string }>;
  /** Environment files written (0600): the names they hold, never the values. */
  envFiles: Array<{ service: ServiceName; path: string; names: string[] }>;
  /** Daemons `up` had started that were stopped so the services can take over. */
  replaced: Array<{ service: ServiceName; pid: number }>;
  started: boolean;
  /** The service-manager commands run (or, with start false, to run). */
  commands: string[];
  warnings: string[];
}

/** The env files' content for a spec, from the installing environment. */
export function plannedEnvFiles(
  spec: ServiceSpec,
  env: NodeJS.ProcessEnv,
): Array<{ service: ServiceName; path: string; vars: Array<[string, string]> }> {
  return (spec.services ?? SERVICE_NAMES).map((service) => ({
    service,
    path: envFilePath(spec.home, service),
    vars: serviceEnv(env, service),
  }));
}

export async function installServices(
  spec: ServiceSpec,
  env: NodeJS.ProcessEnv,
  host: ServiceHost,
  options: { start: boolean },
): Promise<InstallResult> {
  const envs = plannedEnvFiles(spec, env);
  const withFiles: ServiceSpec = {
    ...spec,
    envFiles: Object.fromEntries(envs.map((e) => [e.service, e.vars.length > 0])),
  };
  const files = serviceFiles(withFiles);
  const warnings: string[] = [];
  const watchdogEnv = envs.find((e) => e.service === 'watchdog');
  if (watchdogEnv !== undefined && !watchdogEnv.vars.some(([n]) => n === 'RUNPOD_API_KEY')) {
    if (spec.kind === 'launchd') {
      throw new AppError(
        'RUNPOD_AUTH',
        'RUNPOD_API_KEY is not set, and a launchd agent has no other way to get it',
        {
          hint: 'export RUNPOD_API_KEY=... and run `runpod-llm service install` again (it is written 0600 to the service environment file, never into the plist)',
        },
      );
    }
    warnings.push(
      `RUNPOD_API_KEY is not set: the watchdog service needs it. Either export it and run \`runpod-llm service install\` again (written 0600 to ${envFilePath(spec.home, 'watchdog')}), or give it to the user manager: \`systemctl --user set-environment RUNPOD_API_KEY=...\``,
    );
  }

  const written: InstallResult['envFiles'] = [];
  for (const e of envs) {
    if (e.vars.length === 0) {
      rmSync(e.path, { force: true });
      continue;
    }
    writePrivateFile(e.path, envFileContent(e.vars));
    written.push({ service: e.service, path: e.path, names: e.vars.map(([n]) => n) });
  }
  for (const f of files) writeUnitFile(f);

  const commands = startCommands(spec.kind, files, host);
  const result: InstallResult = {
    kind: spec.kind,
    files: files.map(({ service, unit, path }) => ({ service, unit, path })),
    envFiles: written,
    replaced: [],
    started: false,
    commands: commands.map((c) => c.join(' ')),
    warnings,
  };
  if (spec.kind === 'systemd') {
    const linger = await lingerOf(host);
    if (linger !== 'yes')
      warnings.push(
        `lingering is ${linger === 'no' ? 'off' : 'unknown'} for ${host.user}: without it the services stop at logout and start only at login. Run \`loginctl enable-linger ${host.user}\` so they run from boot`,
      );
  } else {
    warnings.push(
      'launchd agents run while you are logged in and start again at login (RunAtLoad, KeepAlive)',
    );
  }
  if (!options.start) return result;

  // First make sure the service manager answers: nothing running is stopped for services that
  // then could not start (a pod must never be left unwatched by an install).
  const preflight =
    spec.kind === 'systemd'
      ? ['systemctl', '--user', 'daemon-reload']
      : ['launchctl', 'print', `gui/${host.uid}`];
  const ready = await host.run(preflight[0] ?? '', preflight.slice(1));
  if (ready.code !== 0)
    throw serviceManagerError(
      spec.kind,
      preflight,
      ready,
      'the service files are written; nothing was stopped or started',
    );

  // `up` may have left its own daemons: stop them, or the services would find the port and the
  // watchdog's pid file taken and restart in a loop.
  for (const f of files) {
    const info = readDaemon(spec.home, f.service);
    if (info?.running === true && !info.service) {
      await stopDaemon(spec.home, f.service);
      result.replaced.push({ service: f.service, pid: info.pid });
    }
  }
  for (const [command, ...args] of commands) {
    if (
      command === undefined ||
      (command === preflight[0] && args.join(' ') === preflight.slice(1).join(' '))
    )
      continue;
    const r = await host.run(command, args);
    // bootout of an agent that was not loaded fails harmlessly.
    if (r.code !== 0 && !(command === 'launchctl' && args[0] === 'bootout')) {
      const stopped = result.replaced.map((x) => x.service).join(' and ');
      throw serviceManagerError(
        spec.kind,
        [command, ...args],
        r,
        stopped === ''
          ? 'the service files are written'
          : `the service files are written, and the ${stopped} \`up\` had started ${result.replaced.length === 1 ? 'was' : 'were'} stopped: \`runpod-llm up\` starts ${result.replaced.length === 1 ? 'it' : 'them'} again`,
      );
    }
  }
  result.started = true;
  return result;
}

function writeUnitFile(f: ServiceFile): void {
  mkdirSync(dirname(f.path), { recursive: true, mode: 0o755 });
  writeFileSync(f.path, f.content, { mode: 0o644 });
  chmodSync(f.path, 0o644);
}

function startCommands(kind: ServiceKind, files: ServiceFile[], host: ServiceHost): string[][] {
  if (kind === 'systemd')
    return [
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', '--now', ...files.map((f) => f.unit)],
    ];
  return files.flatMap((f) => [
    ['launchctl', 'bootout', `gui/${host.uid}/${f.unit}`],
    ['launchctl', 'bootstrap', `gui/${host.uid}`, f.path],
  ]);
}

function serviceManagerError(kind: ServiceKind, argv: string[], r: CommandResult, done: string): AppError {
  const tool = argv[0] ?? '';
  if (r.code === null) {
    return new AppError(
      'MISSING_SERVICE_MANAGER',
      `${tool} is not available on this machine (${kind === 'systemd' ? 'no systemd' : 'no launchd'})`,
      { hint: `${done}; start them by hand, or run \`runpod-llm watch\` from cron instead` },
    );
  }
  const why = r.stderr.trim().split('\n')[0] ?? '';
  return new AppError('SERVICE_MANAGER_FAILED', `\`${argv.join(' ')}\` failed: ${why || `exit ${r.code}`}`, {
    hint:
      kind === 'systemd' && /bus|XDG_RUNTIME_DIR/i.test(why)
        ? `${done}; there is no systemd user manager in this session (a container, or su without a login): log in as the user, or run the command there`
        : `${done}; fix the cause and run \`runpod-llm service install\` again`,
  });
}

async function lingerOf(host: ServiceHost): Promise<'yes' | 'no' | 'unknown'> {
  if (existsSync(`/var/lib/systemd/linger/${host.user}`)) return 'yes';
  const r = await host.run('loginctl', ['show-user', host.user, '--property=Linger', '--value']);
  const v = r.code === 0 ? r.stdout.trim() : '';
  return v === 'yes' ? 'yes' : v === 'no' ? 'no' : 'unknown';
}

export interface UninstallResult {
  kind: ServiceKind;
  removed: string[];
  commands: string[];
  warnings: string[];
}

/** Stops and disables the services, removes their files (unit files and the 0600 env files). */
export async function uninstallServices(spec: ServiceSpec, host: ServiceHost): Promise<UninstallResult> {
  const services = spec.services ?? SERVICE_NAMES;
  const units = services.map((s) => unitName(spec.kind, s));
  const present = services.filter((s) => existsSync(unitPath(spec, s)));
  const commands: string[][] =
    present.length === 0
      ? []
      : spec.kind === 'systemd'
        ? [['systemctl', '--user', 'disable', '--now', ...units]]
        : present.map((s) => ['launchctl', 'bootout', `gui/${host.uid}/${unitName('launchd', s)}`]);
  const warnings: string[] = [];
  for (const [command, ...args] of commands) {
    if (command === undefined) continue;
    const r = await host.run(command, args);
    if (r.code !== 0)
      warnings.push(
        `${serviceManagerError(spec.kind, [command, ...args], r, 'the files are removed').message}: if the services still run, run \`${[command, ...args].join(' ')}\` in your login session`,
      );
  }
  const removed: string[] = [];
  for (const s of services) {
    for (const path of [unitPath(spec, s), envFilePath(spec.home, s)]) {
      if (!existsSync(path)) continue;
      rmSync(path, { force: true });
      removed.push(path);
    }
    // The daemon's pid file, once the service manager has ended it.
    const info = readDaemon(spec.home, s);
    if (info !== null && info.service && !info.running) removePidFile(spec.home, s);
  }
  if (spec.kind === 'systemd' && present.length > 0) {
    const r = await host.run('systemctl', ['--user', 'daemon-reload']);
    if (r.code !== 0 && warnings.length === 0)
      warnings.push(
        serviceManagerError(spec.kind, ['systemctl', '--user', 'daemon-reload'], r, 'the files are removed')
          .message,
      );
  }
  return { kind: spec.kind, removed, commands: commands.map((c) => c.join(' ')), warnings };
}

export interface ServiceStatus {
  service: ServiceName;
  unit: string;
  path: string;
  installed: boolean;
  /** The unit file is what `install` would write now (same CLI, home, config). */
  current: boolean | null;
  /** systemd: is-enabled; launchd: loaded. null: the service manager could not be asked. */
  enabled: boolean | null;
  active: boolean | null;
  envFile: { path: string; mode: string } | null;
  daemon: (DaemonInfo & { log: string }) | null;
  /** Why enabled/active are unknown. */
  note?: string;
}

export interface ServicesStatus {
  kind: ServiceKind;
  services: ServiceStatus[];
  /** systemd only: lingering keeps user services running without a login. */
  linger: 'yes' | 'no' | 'unknown' | null;
}

export async function servicesStatus(
  spec: ServiceSpec,
  env: NodeJS.ProcessEnv,
  host: ServiceHost,
): Promise<ServicesStatus> {
  const envs = plannedEnvFiles(spec, env);
  const expected = serviceFiles({
    ...spec,
    envFiles: Object.fromEntries(envs.map((e) => [e.service, existsSync(e.path)])),
  });
  const out: ServiceStatus[] = [];
  for (const f of expected) {
    const installed = existsSync(f.path);
    let enabled: boolean | null = null;
    let active: boolean | null = null;
    let note: string | undefined;
    if (installed) {
      if (spec.kind === 'systemd') {
        const e = await host.run('systemctl', ['--user', 'is-enabled', f.unit]);
        const a = await host.run('systemctl', ['--user', 'is-active', f.unit]);
        // is-enabled/is-active print a word and exit non-zero for "disabled"/"inactive".
        const ew = e.stdout.trim();
        const aw = a.stdout.trim();
        if (ew !== '') enabled = ew === 'enabled';
        if (aw !== '') active = aw === 'active' || aw === 'reloading';
        const silent = aw === '' ? a : ew === '' ? e : undefined;
        if (silent !== undefined)
          note = silent.stderr.trim().split('\n')[0] || 'systemctl --user gave no answer';
      } else {
        const r = await host.run('launchctl', ['print', `gui/${host.uid}/${f.unit}`]);
        if (r.code === null) note = 'launchctl: not found';
        else {
          enabled = r.code === 0;
          active = r.code === 0 ? /\bstate = running\b/.test(r.stdout) : false;
        }
      }
    }
    const envPath = envFilePath(spec.home, f.service);
    const daemon = readDaemon(spec.home, f.service);
    out.push({
      service: f.service,
      unit: f.unit,
      path: f.path,
      installed,
      current: installed ? readFileSync(f.path, 'utf8') === f.content : null,
      enabled,
      active,
      envFile: existsSync(envPath)
        ? { path: envPath, mode: (statSync(envPath).mode & 0o777).toString(8).padStart(4, '0') }
        : null,
      daemon: daemon === null ? null : { ...daemon, log: `${spec.home}/logs/${f.service}.log` },
      ...(note === undefined ? {} : { note }),
    });
  }
  return { kind: spec.kind, services: out, linger: spec.kind === 'systemd' ? await lingerOf(host) : null };
}
