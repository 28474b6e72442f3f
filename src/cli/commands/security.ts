import { accessSync, constants } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { type Command, Option } from '@commander-js/extra-typings';
import { runAudit } from '../../security/audit.js';
import { SEVERITIES } from '../../security/audit-report.js';
import { checkLicenses, type LicenseReport } from '../../security/licenses.js';
import {
  checkExplicitOutput,
  resolveOutputPath,
  writeExplicitOutput,
  writeFileAtomic,
} from '../../security/output-file.js';
import { buildSecurityReport, reportExitCode, type SecurityReport } from '../../security/report.js';
import { generateSbom } from '../../security/sbom.js';
import { AppError } from '../../shared/errors.js';
import { ownPackage, ownVersion } from '../../shared/own-package.js';
import { EXIT } from '../exit-codes.js';
import { type CliIo, line } from '../io.js';

/**
 * `runpod-llm security sbom|scan|licenses|report`. Each subcommand returns its data (printed as
 * text, or as JSON with `--json`) and an exit code: 0 clean, 9 a check could not run (audit
 * unavailable, no installed tree), 10 a check found problems. Usage errors (2) and missing
 * tools (3) are thrown as AppErrors and mapped by the CLI's one error path.
 *
 * @example
 *   registerSecurityCommands(program, io, (n) => { code = n; });
 */
export function registerSecurityCommands(program: Command, io: CliIo, setCode: (n: number) => void): void {
  const out = (text = ''): void => line(io.stdout, text);
  const json = (value: unknown): void => out(JSON.stringify(value, null, 2));
  const security = program
    .command('security')
    .description('supply-chain and configuration checks: SBOM, vulnerability audit, licences, report');
  const projectOption = () =>
    new Option(
      '--project <dir>',
      'the npm project to check (default: this runpod-llm installation itself, wherever you run it)',
    );
  const levelOption = () =>
    new Option('--level <severity>', 'lowest severity that fails the audit')
      .choices([...SEVERITIES])
      .default('low');

  security
    .command('sbom')
    .description('CycloneDX 1.5 SBOM of the installed dependency tree (production only unless --dev)')
    .option(
      '--out <file>',
      'write the SBOM to this file (mode 0644; never through a symlink) instead of stdout',
    )
    .option('--dev', 'include devDependencies (scope "excluded")')
    .option('--force', 'replace an existing file at --out')
    .option('--json', 'with --out: print a JSON summary')
    .addOption(projectOption())
    .action(async (flags) => {
      const target =
        flags.out === undefined
          ? undefined
          : checkExplicitOutput(flags.out, process.cwd(), flags.force === true);
      const sbom = await generateSbom({
        cwd: projectDir(flags.project),
        dev: flags.dev === true,
        env: io.env,
        toolVersion: ownVersion(),
      });
      for (const warning of sbom.warnings) line(io.stderr, `warning: ${warning}`);
      const text = `${JSON.stringify(sbom.bom, null, 2)}\n`;
      if (target === undefined) {
        io.stdout.write(text);
      } else {
        writeExplicitOutput(target, text, flags.force === true);
        const summary = {
          file: displayPath(target),
          specVersion: sbom.bom.specVersion,
          components: sbom.components,
          devComponents: sbom.devComponents,
          application: `${sbom.bom.metadata.component.name}@${sbom.bom.metadata.component.version ?? ''}`,
          warnings: sbom.warnings,
        };
        if (flags.json === true) json(summary);
        else
          out(
            `wrote ${summary.file}: CycloneDX ${summary.specVersion}, ${sbom.components} ${flags.dev === true ? `components (${sbom.devComponents} dev)` : 'production components'} of ${summary.application}`,
          );
      }
      setCode(EXIT.OK);
    });

  security
    .command('scan')
    .description(
      'vulnerability audit of the dependency tree (npm audit); never "clean" when no advisory service answered',
    )
    .addOption(levelOption())
    .option('--dev', 'audit devDependencies too')
    .option(
      '--advisories <file>',
      'check against an offline advisory list (npm bulk advisory format) instead of the registry',
    )
    .option('--json', 'print the result as JSON')
    .addOption(projectOption())
    .action(async (flags) => {
      const outcome = await runAudit({
        cwd: projectDir(flags.project),
        level: flags.level,
        dev: flags.dev === true,
        env: io.env,
        ...(flags.advisories === undefined ? {} : { advisoriesFile: resolve(flags.advisories) }),
      });
      const code =
        outcome.status === 'unavailable'
          ? EXIT.CHECK_UNAVAILABLE
          : outcome.status === 'vulnerable'
            ? EXIT.CHECK_FAILED
            : EXIT.OK;
      setCode(code);
      if (flags.json === true) return json(outcome);
      if (outcome.status === 'unavailable') {
        line(io.stderr, `audit unavailable: ${outcome.reason}`);
        line(
          io.stderr,
          'fix: check access to the npm registry, or pass --advisories FILE (an offline advisory list)',
        );
        return;
      }
      const scope = `${outcome.audited} ${flags.dev === true ? '' : 'production '}dependencies checked against ${outcome.source === 'registry' ? 'the npm registry' : 'the offline advisory list'}`;
      if (outcome.status === 'ok') {
        const below = outcome.report.vulnerabilities.length;
        out(
          `audit: no known vulnerabilities at or above ${outcome.level} (${scope})${below > 0 ? `; ${below} below ${outcome.level}` : ''}`,
        );
        return;
      }
      out(`audit: ${outcome.failing.length} vulnerable package(s) at or above ${outcome.level} (${scope}):`);
      for (const v of outcome.failing) {
        const what =
          v.advisories.length > 0
            ? v.advisories
                .map((a) => `${a.title} (${a.range})${a.url === undefined ? '' : ` ${a.url}`}`)
                .join('; ')
            : `through ${v.via.join(', ')}`;
        out(`  ${v.severity.padEnd(8)} ${v.name}: ${what}; fix: ${v.fix}`);
      }
    });

  security
    .command('licenses')
    .description(
      'licences of the production dependencies, checked against an allow-list (default: permissive licences)',
    )
    .option('--allow <ids>', 'allowed SPDX ids, separated by ";" (replaces the default list)')
    .option(
      '--allow-package <names>',
      'packages accepted whatever their licence after review, "name" or "name@version", separated by ";"',
    )
    .option('--json', 'print the result as JSON')
    .addOption(projectOption())
    .action((flags) => {
      const report = checkLicenses(projectDir(flags.project), {
        ...(flags.allow === undefined ? {} : { allow: splitList(flags.allow) }),
        ...(flags.allowPackage === undefined ? {} : { allowPackages: splitList(flags.allowPackage) }),
      });
      setCode(report.violations.length > 0 ? EXIT.CHECK_FAILED : EXIT.OK);
      if (flags.json === true) return json(report);
      printLicenses(report, out);
    });

  security
    .command('report')
    .description(
      'SBOM, audit and licences plus the gateway configuration and process checks; writes security-report.json',
    )
    .option(
      '--out <file>',
      'where to write the report (default: security-report.json here, replacing an earlier one)',
    )
    .option('--force', 'replace an existing file at --out')
    .option('--config <file>', 'the gateway config file (default ./runpod-llm.json if present)')
    .addOption(levelOption())
    .option('--advisories <file>', 'audit against an offline advisory list instead of the registry')
    .option('--json', 'print the report as JSON')
    .addOption(projectOption())
    .action(async (flags) => {
      // A path typed with --out is the user's choice; the default name is the tool's, so it stays
      // inside the working directory and only ever replaces a regular file there.
      const explicit = flags.out !== undefined;
      const target = explicit
        ? checkExplicitOutput(flags.out as string, process.cwd(), flags.force === true)
        : writableHere(resolveOutputPath(DEFAULT_REPORT, process.cwd(), flags.force === true));
      const report = await buildSecurityReport({
        cwd: projectDir(flags.project),
        configCwd: process.cwd(),
        env: io.env,
        level: flags.level,
        toolVersion: ownVersion(),
        ...(flags.config === undefined ? {} : { configPath: resolve(flags.config) }),
        ...(flags.advisories === undefined ? {} : { advisoriesFile: resolve(flags.advisories) }),
      });
      const text = `${JSON.stringify(report, null, 2)}\n`;
      if (explicit) writeExplicitOutput(target, text, flags.force === true);
      else writeFileAtomic(target, text);
      setCode(reportExitCode(report));
      if (flags.json === true) return json(report);
      printReport(report, displayPath(target), out);
    });
}

const LABEL = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', unavailable: 'N/A ', skip: 'SKIP' } as const;

function printReport(report: SecurityReport, file: string, out: (text?: string) => void): void {
  const width = Math.max(...report.items.map((i) => i.id.length));
  for (const item of report.items) {
    out(`${LABEL[item.status]}  ${item.id.padEnd(width)}  ${item.detail}`);
    if (item.fix !== undefined && item.status !== 'pass' && item.status !== 'skip')
      out(`${' '.repeat(width + 8)}fix: ${item.fix}`);
  }
  const s = report.summary;
  out(
    `summary: ${s.pass} pass, ${s.warn} warn, ${s.fail} fail, ${s.unavailable} could not run, ${s.skip} skipped; wrote ${file}`,
  );
}

function printLicenses(report: LicenseReport, out: (text?: string) => void): void {
  const width = Math.min(48, Math.max(...report.packages.map((p) => p.name.length + p.version.length + 1)));
  for (const p of report.packages)
    out(
      `${`${p.name}@${p.version}`.padEnd(width)}  ${(p.license ?? '(none)').padEnd(24)}  ${p.category}${p.allowed ? '' : '  NOT ALLOWED'}`,
    );
  const c = report.counts;
  out(
    `licenses: ${report.packages.length} production packages: ${c.permissive} permissive, ${c['weak-copyleft']} weak copyleft, ${c['strong-copyleft']} strong copyleft, ${c.unknown} unknown`,
  );
  if (report.violations.length === 0) {
    out('policy: all allowed');
    return;
  }
  out(`policy: ${report.violations.length} violation(s):`);
  for (const v of report.violations) out(`  ${v.name}@${v.version} (${v.path}): ${v.reason ?? ''}`);
}

const DEFAULT_REPORT = 'security-report.json';

/** `--project DIR`, else this tool's own package (found from the running module, not the cwd). */
function projectDir(dir: string | undefined): string {
  return dir === undefined ? ownPackage().dir : resolve(dir);
}

/** The default report file's directory must be writable: say so before the checks run, not after. */
function writableHere(path: string): string {
  try {
    accessSync(dirname(path), constants.W_OK);
  } catch (err) {
    throw new AppError(
      'CLI_USAGE_OUTPUT',
      `cannot write ${DEFAULT_REPORT} in ${dirname(path)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { hint: 'pass --out FILE in a directory you can write to, or run it from one' },
    );
  }
  return path;
}

/** Relative to the working directory when inside it, else absolute. */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

function splitList(value: string): string[] {
  return value
    .split(/[;,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}
