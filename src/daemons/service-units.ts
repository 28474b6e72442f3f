import { join } from 'node:path';
import { ENV_VARS } from '../config/names.js';
import { AppError } from '../shared/errors.js';
import type { SelfCommand } from './detached-process.js';
import { GATEWAY_WITHHELD_ENV } from './gateway-daemon.js';

/*
 * The service definitions `runpod-llm service install` writes: user-level units
 * (systemd on Linux, launchd on macOS) that keep the watchdog loop and the gateway running,
 * restart them when they die, and start them again at boot (systemd with lingering) or login
 * (launchd). Pure: paths, environment and the CLI to run come in; file contents come out.
 *
 * Secrets never go into a unit file. The watchdog's RunPod key (and HF token) come from an
 * environment file (0600, in a 0700 directory under the home) or, on systemd, from the user
 * manager's own environment; the gateway's file never holds the RunPod key, and its unit unsets
 * it in case the user manager's environment has it.
 */

/** The service manager a unit file is for. */
export type ServiceKind = 'systemd' | 'launchd';
export type ServiceName = 'watchdog' | 'gateway';
export const SERVICE_NAMES: readonly ServiceName[] = ['watchdog', 'gateway'];

export interface ServiceSpec {
  kind: ServiceKind;
  /** The state directory (absolute). */
  home: string;
  /** The config file the services read (absolute), if any. */
  configFile?: string;
  /** Where the CLI runs (a relative home or `--import tsx` resolve from here). */
  workingDirectory: string;
  /** node, its flags, the CLI entry (absolute). */
  self: SelfCommand;
  /** The user's home directory (where ~/.config and ~/Library live). */
  userHome: string;
  /** $XDG_CONFIG_HOME when set (systemd looks for user units there). */
  xdgConfigHome?: string;
  /** Which services: default both. */
  services?: readonly ServiceName[];
  /** Environment files that exist (or will, with this install): launchd needs them to exist. */
  envFiles?: Partial<Record<ServiceName, boolean>>;
}

export interface ServiceFile {
  service: ServiceName;
  /** The unit (systemd) or agent label (launchd). */
  unit: string;
  path: string;
  content: string;
}

const SYSTEMD_UNIT: Record<ServiceName, string> = {
  watchdog: 'runpod-llm-watchdog.service',
  gateway: 'runpod-llm-gateway.service',
};
const LAUNCHD_LABEL: Record<ServiceName, string> = {
  watchdog: 'com.runpod-llm.watchdog',
  gateway: 'com.runpod-llm.gateway',
};

const DESCRIPTION: Record<ServiceName, string> = {
  watchdog: 'runpod-llm watchdog: runtime, idle and budget limits on RunPod pods; recreates dead pods',
  gateway: 'runpod-llm gateway: the OpenAI-compatible endpoint for the RunPod pods',
};

const ARGS: Record<ServiceName, string[]> = {
  watchdog: ['watch', '--loop', '--service'],
  gateway: ['gateway', '--service'],
};

export function unitName(kind: ServiceKind, service: ServiceName): string {
  return kind === 'systemd' ? SYSTEMD_UNIT[service] : LAUNCHD_LABEL[service];
}

export function unitDir(spec: Pick<ServiceSpec, 'kind' | 'userHome' | 'xdgConfigHome'>): string {
  if (spec.kind === 'launchd') return join(spec.userHome, 'Library', 'LaunchAgents');
  return join(spec.xdgConfigHome ?? join(spec.userHome, '.config'), 'systemd', 'user');
}

export function unitPath(
  spec: Pick<ServiceSpec, 'kind' | 'userHome' | 'xdgConfigHome'>,
  service: ServiceName,
): string {
  return join(
    unitDir(spec),
    spec.kind === 'systemd' ? SYSTEMD_UNIT[service] : `${LAUNCHD_LABEL[service]}.plist`,
  );
}

/** The 0600 environment file a service reads its secrets and settings from. */
export function envFilePath(home: string, service: ServiceName): string {
  return join(home, 'service', `${service}.env`);
}

export function serviceLogPath(home: string, service: ServiceName): string {
  return join(home, 'logs', `${service}.log`);
}

export function serviceFiles(spec: ServiceSpec): ServiceFile[] {
  return (spec.services ?? SERVICE_NAMES).map((service) => ({
    service,
    unit: unitName(spec.kind, service),
    path: unitPath(spec, service),
    content: spec.kind === 'systemd' ? systemdUnit(spec, service) : launchdPlist(spec, service),
  }));
}

function systemdUnit(spec: ServiceSpec, service: ServiceName): string {
  const env = [
    ['RUNPOD_LLM_HOME', spec.home],
    ...(spec.configFile === undefined ? [] : [['RUNPOD_LLM_CONFIG', spec.configFile]]),
  ];
  const lines = [
    '# Written by `runpod-llm service install`; `runpod-llm service uninstall` removes it.',
    "# No secrets here: they are in the EnvironmentFile (0600) or the user manager's environment.",
    '[Unit]',
    `Description=${DESCRIPTION[service]}`,
    'After=network-online.target',
    'Wants=network-online.target',
    // Never give up restarting (a long network outage must not leave pods unwatched).
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    `WorkingDirectory=${systemdQuote(spec.workingDirectory)}`,
    ...env.map(([k, v]) => `Environment=${systemdQuote(`${k}=${v}`)}`),
    `EnvironmentFile=-${systemdPath(envFilePath(spec.home, service))}`,
    ...(service === 'gateway'
      ? [
          `UnsetEnvironment=${['RUNPOD_API_KEY', ...GATEWAY_WITHHELD_ENV.filter((n) => n !== 'RUNPOD_API_KEY')].join(' ')}`,
        ]
      : []),
    `ExecStart=${[spec.self.command, ...spec.self.args, ...ARGS[service]].map(systemdQuote).join(' ')}`,
    'Restart=always',
    'RestartSec=5',
    // SIGTERM: the gateway drains in-flight streams, the watchdog finishes its pass.
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'UMask=0077',
    'NoNewPrivileges=yes',
    `StandardOutput=append:${systemdPath(serviceLogPath(spec.home, service))}`,
    `StandardError=append:${systemdPath(serviceLogPath(spec.home, service))}`,
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ];
  return lines.join('\n');
}

/** systemd's quoting: specifiers (%) and variables ($) escaped, quotes where a word needs them. */
function systemdQuote(word: string): string {
  if (/[\n\r]/.test(word))
    throw new AppError(
      'CONFIG_INVALID',
      `a path or value with a line break cannot go into a service file: ${JSON.stringify(word)}`,
      { hint: 'use a path without line breaks' },
    );
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A path in a setting that takes no quotes (EnvironmentFile=, StandardOutput=append:). */
function systemdPath(path: string): string {
  if (/[\s"'\\\n]/.test(path))
    throw new AppError(
      'CONFIG_INVALID',
      `the path ${JSON.stringify(path)} has a space or quote, which systemd cannot take in EnvironmentFile= or StandardOutput=`,
      { hint: 'set RUNPOD_LLM_HOME to a path without spaces or quotes' },
    );
  return path.replace(/%/g, '%%');
}

function launchdPlist(spec: ServiceSpec, service: ServiceName): string {
  // launchd has no environment files: node reads it itself (--env-file, Node >= 20.6), so the
  // key never appears in the plist or in `launchctl print`.
  const envFile = spec.envFiles?.[service] === true ? [`--env-file=${envFilePath(spec.home, service)}`] : [];
  const program = [spec.self.command, ...envFile, ...spec.self.args, ...ARGS[service]];
  const env: Array<[string, string]> = [
    ['RUNPOD_LLM_HOME', spec.home],
    ...(spec.configFile === undefined ? [] : [['RUNPOD_LLM_CONFIG', spec.configFile] as [string, string]]),
  ];
  const log = serviceLogPath(spec.home, service);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by `runpod-llm service install`; `runpod-llm service uninstall` removes it. No secrets here. -->',
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key><string>${xml(LAUNCHD_LABEL[service])}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...program.map((a) => `    <string>${xml(a)}</string>`),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    ...env.map(([k, v]) => `    <key>${xml(k)}</key><string>${xml(v)}</string>`),
    '  </dict>',
    `  <key>WorkingDirectory</key><string>${xml(spec.workingDirectory)}</string>`,
    '  <key>RunAtLoad</key><true/>',
    '  <key>KeepAlive</key><true/>',
    '  <key>ThrottleInterval</key><integer>5</integer>',
    '  <key>ExitTimeOut</key><integer>30</integer>',
    '  <key>Umask</key><integer>63</integer>',
    '  <key>ProcessType</key><string>Background</string>',
    `  <key>StandardOutPath</key><string>${xml(log)}</string>`,
    `  <key>StandardErrorPath</key><string>${xml(log)}</string>`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The environment files' content, from the installing shell's environment: the configuration
 * variables it sets (so the services behave like `up` run from that shell), and for the watchdog
 * the RunPod key and HF token. Never the RunPod key, HF token or a static upstream for the gateway.
 */
export function serviceEnv(env: NodeJS.ProcessEnv, service: ServiceName): Array<[string, string]> {
  const names = new Set<string>(ENV_VARS.map(([name]) => name));
  names.delete('RUNPOD_LLM_HOME'); // in the unit, resolved
  if (service === 'watchdog') {
    names.add('RUNPOD_API_KEY');
    names.add('HF_TOKEN');
    // The watchdog never serves requests: no gateway or upstream secrets.
    names.delete('GATEWAY_API_KEYS');
    names.delete('UPSTREAM_API_KEY');
  } else {
    for (const n of GATEWAY_WITHHELD_ENV) names.delete(n);
  }
  const out: Array<[string, string]> = [];
  for (const name of [...names].sort()) {
    const value = env[name];
    if (value !== undefined && value !== '') out.push([name, value]);
  }
  return out;
}

/** `KEY=value` lines both systemd's EnvironmentFile= and node's --env-file read the same way. */
export function envFileContent(vars: Array<[string, string]>): string {
  const lines = [
    '# Written by `runpod-llm service install` (0600). Secrets for the service live here, not in the unit.',
  ];
  for (const [name, value] of vars) {
    if (/["'\\\n\r$`]/.test(value) || /^\s|\s$/.test(value)) {
      throw new AppError(
        'CONFIG_INVALID',
        `${name} has a quote, backslash, $, backtick, line break or outer space, which an environment file cannot carry the same way for systemd and node`,
        { hint: `set ${name} without those characters, or put the setting in runpod-llm.json` },
      );
    }
    lines.push(/[\s#]/.test(value) ? `${name}="${value}"` : `${name}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}
