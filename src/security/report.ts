import { loadConfig } from '../config/load.js';
import { isAppError } from '../shared/errors.js';
import { type AuditOutcome, runAudit } from './audit.js';
import type { Severity } from './audit-report.js';
import {
  checkAuth,
  checkCors,
  checkRateLimit,
  checkStatePermissions,
  checkTls,
  type CheckStatus,
  type MachineFacts,
  realMachine,
  type ReportItem,
} from './config-checks.js';
import { checkLicenses, type LicensePolicy } from './licenses.js';
import { checkPodOpenRoutes, type PodProbeOptions } from './pod-checks.js';
import { checkGatewayEnvironment, checkRoot } from './process-checks.js';
import { readManifest } from './project.js';
import type { RunCommand } from './run-command.js';
import { generateSbom } from './sbom.js';

/*
 * `runpod-llm security report`: the SBOM, audit and licence checks plus the checks of the
 * configuration the gateway runs with (read exactly as `runpod-llm gateway` reads it) and of
 * the running gateway process. Returns data; the command prints it and writes
 * `security-report.json`. Nothing in the report is a secret: keys are counted, never shown.
 */

/** What `security report` checks. */
export interface ReportOptions {
  /** The npm project whose supply chain is checked (the CLI's default: this tool's own package). */
  cwd: string;
  /**
   * Where `./runpod-llm.json` is looked for, as `runpod-llm gateway` started there would (the
   * CLI passes its working directory; loadConfig's default is the process's). Never the
   * project directory: the settings checked are the gateway's, not the checked package's.
   */
  configCwd?: string;
  env: NodeJS.ProcessEnv;
  configPath?: string;
  level?: Severity;
  advisoriesFile?: string;
  licensePolicy?: LicensePolicy;
  run?: RunCommand;
  machine?: MachineFacts;
  toolVersion?: string;
  /** Options of the pod URL probes (tests shorten the timeout). */
  podProbe?: PodProbeOptions;
}

export interface SecurityReport {
  generatedAt: string;
  tool: { name: 'runpod-llm'; version: string };
  project: { name: string; version: string };
  items: ReportItem[];
  summary: Record<CheckStatus, number>;
}

/**
 * @example
 *   const report = await buildSecurityReport({ cwd: process.cwd(), env: process.env });
 *   process.exitCode = reportExitCode(report);
 */
export async function buildSecurityReport(options: ReportOptions): Promise<SecurityReport> {
  const machine = options.machine ?? realMachine;
  const manifest = readManifest(options.cwd);
  const items: ReportItem[] = [];
  const run = { env: options.env, ...(options.run === undefined ? {} : { run: options.run }) };

  items.push(
    await guarded('supply.sbom', async () => {
      const sbom = await generateSbom({
        cwd: options.cwd,
        ...run,
        ...(options.toolVersion === undefined ? {} : { toolVersion: options.toolVersion }),
      });
      const supplier = sbom.warnings.length > 0 ? ` (${sbom.warnings.join('; ')})` : '';
      return {
        id: 'supply.sbom',
        status: sbom.warnings.length > 0 ? 'warn' : 'pass',
        detail: `CycloneDX ${sbom.bom.specVersion} SBOM of ${sbom.components} production components${supplier}`,
        ...(sbom.warnings.length > 0 ? { fix: 'add "author" to package.json' } : {}),
      };
    }),
  );
  items.push(
    await guarded('supply.audit', async () =>
      auditItem(
        await runAudit({
          cwd: options.cwd,
          ...run,
          ...(options.level === undefined ? {} : { level: options.level }),
          ...(options.advisoriesFile === undefined ? {} : { advisoriesFile: options.advisoriesFile }),
        }),
      ),
    ),
  );
  items.push(
    await guarded('supply.licenses', async () => {
      const licenses = checkLicenses(options.cwd, options.licensePolicy);
      if (licenses.violations.length === 0)
        return {
          id: 'supply.licenses',
          status: 'pass',
          detail: `${licenses.packages.length} production packages, all under allowed licences`,
        };
      const list = licenses.violations
        .slice(0, 5)
        .map((v) => `${v.name}@${v.version}: ${v.reason ?? ''}`)
        .join('; ');
      return {
        id: 'supply.licenses',
        status: 'fail',
        detail: `${licenses.violations.length} licence violation(s): ${list}`,
        fix: 'replace the package, or allow the licence (--allow) or the package (--allow-package) after review',
      };
    }),
  );

  const loaded = loadConfig({
    env: options.env,
    ...(options.configCwd === undefined ? {} : { cwd: options.configCwd }),
    ...(options.configPath === undefined ? {} : { configPath: options.configPath }),
  });
  if (loaded.config === undefined) {
    const problems = loaded.errors
      .slice(0, 3)
      .map((e) => `${e.path}: ${e.message}`)
      .join('; ');
    items.push({
      id: 'config',
      status: 'fail',
      detail: `the gateway configuration is invalid (${problems})`,
      fix: 'fix the settings named above; `runpod-llm gateway` refuses to start with them',
    });
  } else {
    const config = loaded.config;
    items.push(checkAuth(config), checkTls(config, machine), checkCors(config), checkRateLimit(config));
    const home = config.home as string;
    items.push(checkStatePermissions(home), checkRoot(home, machine), checkGatewayEnvironment(home, machine));
    items.push(await checkPodOpenRoutes(home, options.podProbe));
  }

  const summary: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, unavailable: 0, skip: 0 };
  for (const item of items) summary[item.status]++;
  return {
    generatedAt: new Date(machine.now()).toISOString(),
    tool: { name: 'runpod-llm', version: options.toolVersion ?? 'unknown' },
    project: { name: manifest.name, version: manifest.version },
    items,
    summary,
  };
}

/** 10 when any check failed, 9 when none failed but one could not run, else 0 (warnings pass). */
export function reportExitCode(report: SecurityReport): number {
  if (report.summary.fail > 0) return 10;
  if (report.summary.unavailable > 0) return 9;
  return 0;
}

export function auditItem(outcome: AuditOutcome): ReportItem {
  const id = 'supply.audit';
  if (outcome.status === 'unavailable')
    return {
      id,
      status: 'unavailable',
      detail: `audit unavailable: ${outcome.reason}`,
      fix: 'check access to the npm registry, or pass --advisories FILE (an offline advisory list)',
    };
  const source = outcome.source === 'registry' ? 'the npm registry' : 'the offline advisory list';
  if (outcome.status === 'ok') {
    const below = outcome.report.vulnerabilities.length;
    return {
      id,
      status: 'pass',
      detail: `${outcome.audited} dependencies checked against ${source}: nothing at or above ${outcome.level}${below > 0 ? ` (${below} below it)` : ''}`,
    };
  }
  const names = outcome.failing
    .slice(0, 5)
    .map((v) => `${v.name} (${v.severity})`)
    .join(', ');
  return {
    id,
    status: 'fail',
    detail: `${outcome.failing.length} vulnerable package(s) at or above ${outcome.level} per ${source}: ${names}`,
    fix: 'run `runpod-llm security scan` for advisories and fixes',
  };
}

/** A check that throws a coded error becomes an `unavailable` item with its message, not a crash. */
async function guarded(id: string, check: () => Promise<ReportItem>): Promise<ReportItem> {
  try {
    return await check();
  } catch (err) {
    if (!isAppError(err)) throw err;
    return {
      id,
      status: err.code.startsWith('CLI_USAGE') ? 'fail' : 'unavailable',
      detail: err.message,
      ...(err.hint === undefined ? {} : { fix: err.hint }),
    };
  }
}
