import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest } from './project.js';
import { readAdvisoryList, startAdvisoryServer } from './advisory-server.js';
import {
  type ParsedAudit,
  parseAuditJson,
  rank,
  type Severity,
  type VulnerablePackage,
} from './audit-report.js';
import { npmErrorLine, type RunCommand, runCommand } from './run-command.js';

/*
 * `runpod-llm security scan`: a vulnerability audit of the installed tree by `npm audit`.
 *
 * "Clean" is only ever reported when an advisory service actually answered: the registry's
 * (its bulk request seen in npm's http log) or the offline list's (its server counted the
 * request). npm itself prints an empty, clean-looking report when it never asked anyone
 * (`--offline`, `audit=false`); that and every refusal (this machine's registry answers 405)
 * is `unavailable`, with npm's reason.
 */

/** What `security scan` audits and what fails it. */
export interface AuditOptions {
  cwd: string;
  /** Lowest severity that fails the check (default `low`). */
  level?: Severity;
  /** Audit devDependencies too. */
  dev?: boolean;
  /** An offline advisory list (registry bulk format) to check against instead of the registry. */
  advisoriesFile?: string;
  run?: RunCommand;
  /** Environment for npm (npm_config_registry and friends); default this process's. */
  env?: NodeJS.ProcessEnv;
}

export type AuditOutcome =
  | {
      status: 'ok' | 'vulnerable';
      level: Severity;
      source: 'registry' | 'advisory-file';
      /** Vulnerable packages at or above `level`. */
      failing: VulnerablePackage[];
      report: ParsedAudit;
      audited: number;
    }
  | { status: 'unavailable'; level: Severity; source: 'registry' | 'advisory-file'; reason: string };

/** npm logs each HTTP exchange at loglevel http: `npm http fetch POST 200 <url>/-/npm/v1/security/advisories/bulk`. */
const BULK_ANSWERED = /npm http fetch POST 200 \S*\/-\/npm\/v1\/security\/(advisories\/bulk|audits\/quick)/;

/**
 * @example
 *   const outcome = await runAudit({ cwd: process.cwd(), level: 'high' });
 *   if (outcome.status === 'unavailable') console.log(`audit unavailable: ${outcome.reason}`);
 */
export async function runAudit(options: AuditOptions): Promise<AuditOutcome> {
  const level = options.level ?? 'low';
  const run = options.run ?? runCommand;
  const env = options.env === undefined ? {} : { env: options.env };
  readManifest(options.cwd);
  // Offline off and audit on explicitly: either setting in an npmrc makes npm skip the
  // request and print a clean report.
  const args = [
    'audit',
    '--json',
    '--loglevel=http',
    '--offline=false',
    '--audit=true',
    ...(options.dev === true ? [] : ['--omit=dev']),
  ];
  if (options.advisoriesFile === undefined) {
    const result = await run('npm', args, { cwd: options.cwd, ...env });
    return interpret(
      result.stdout,
      result.stderr,
      level,
      'registry',
      BULK_ANSWERED.test(result.stderr),
      options.dev === true,
    );
  }
  const list = readAdvisoryList(options.advisoriesFile);
  const server = await startAdvisoryServer(list);
  // A private cache: npm caches advisory calculations, and an offline list must neither read
  // the registry's nor leave its own behind.
  const cache = mkdtempSync(join(tmpdir(), 'runpod-llm-audit-'));
  try {
    const result = await run('npm', [...args, `--registry=${server.url}`, `--cache=${cache}`], {
      cwd: options.cwd,
      ...env,
    });
    return interpret(
      result.stdout,
      result.stderr,
      level,
      'advisory-file',
      server.bulkRequests() > 0,
      options.dev === true,
    );
  } finally {
    await server.close();
    rmSync(cache, { recursive: true, force: true });
  }
}

export function interpret(
  stdout: string,
  stderr: string,
  level: Severity,
  source: 'registry' | 'advisory-file',
  answered: boolean,
  dev: boolean,
): AuditOutcome {
  const parsed = parseAuditJson(stdout);
  if (parsed.kind === 'error') {
    const reason =
      parsed.reason === 'npm audit printed nothing' ? (npmErrorLine(stderr) ?? parsed.reason) : parsed.reason;
    return { status: 'unavailable', level, source, reason };
  }
  const report = parsed.report;
  // npm's `prod` counts the project itself; `total` does not (arborist audit-report.js).
  const audited = dev ? report.dependencies.total : Math.max(0, report.dependencies.prod - 1);
  if (!answered && report.vulnerabilities.length === 0 && audited > 0) {
    return {
      status: 'unavailable',
      level,
      source,
      reason:
        'npm asked no advisory service (offline mode, or audit disabled in an npmrc), so a clean result would mean nothing',
    };
  }
  const failing = report.vulnerabilities.filter((v) => rank(v.severity) >= rank(level));
  return { status: failing.length > 0 ? 'vulnerable' : 'ok', level, source, failing, report, audited };
}
