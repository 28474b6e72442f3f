/*
 * Parsing of `npm audit --json` (report version 2, npm 7 and later). Kept apart from running
 * npm so the recorded outputs in test/fixtures/audit/ exercise exactly this code.
 *
 * npm prints one of two shapes: a report (`auditReportVersion: 2`) or an error object
 * (`{"message": "405 Method Not Allowed - POST …", "error": {...}}` or
 * `{"error": {"code", "summary", "detail"}}`). Anything else is not a report.
 */

/** npm audit's severities, lowest first. */
export const SEVERITIES = ['info', 'low', 'moderate', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface AdvisoryRef {
  id: number | string | undefined;
  title: string;
  url: string | undefined;
  severity: Severity;
  /** Vulnerable versions, as the advisory states them. */
  range: string;
  cwe: string[];
  cvss: number | undefined;
}

export interface VulnerablePackage {
  name: string;
  severity: Severity;
  isDirect: boolean;
  /** Installed locations (`node_modules/x`). */
  nodes: string[];
  /** Advisories against this package itself. */
  advisories: AdvisoryRef[];
  /** Vulnerable dependencies that make this package vulnerable too. */
  via: string[];
  fix: string;
}

export interface ParsedAudit {
  counts: Record<Severity, number> & { total: number };
  vulnerabilities: VulnerablePackage[];
  /** Dependencies npm audited (prod, or total when dev was included). */
  dependencies: { prod: number; dev: number; total: number };
}

export type ParseResult = { kind: 'report'; report: ParsedAudit } | { kind: 'error'; reason: string };

/** @example parseAuditJson(stdout) // { kind: 'error', reason: '405 Method Not Allowed - POST https://…/advisories/bulk' } */
export function parseAuditJson(stdout: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    return {
      kind: 'error',
      reason: stdout.trim() === '' ? 'npm audit printed nothing' : 'npm audit did not print JSON',
    };
  }
  if (typeof value !== 'object' || value === null)
    return { kind: 'error', reason: 'npm audit printed something other than a JSON object' };
  const v = value as Record<string, unknown>;
  if (v.auditReportVersion === 2 && typeof v.vulnerabilities === 'object' && v.vulnerabilities !== null)
    return { kind: 'report', report: parseReport(v) };
  const error = (v.error ?? {}) as Record<string, unknown>;
  const reason = [v.message, error.summary, error.code].find(
    (x): x is string => typeof x === 'string' && x.trim() !== '',
  );
  if (reason !== undefined) return { kind: 'error', reason: reason.split('\n')[0] as string };
  if (v.auditReportVersion !== undefined)
    return {
      kind: 'error',
      reason: `unsupported npm audit report version ${JSON.stringify(v.auditReportVersion)} (npm 7 or newer needed)`,
    };
  return { kind: 'error', reason: 'npm audit printed an object that is neither a report nor an error' };
}

function parseReport(v: Record<string, unknown>): ParsedAudit {
  const meta = (v.metadata ?? {}) as {
    vulnerabilities?: Record<string, unknown>;
    dependencies?: Record<string, unknown>;
  };
  const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, num(meta.vulnerabilities?.[s])])) as Record<
    Severity,
    number
  >;
  const vulnerabilities = Object.values(v.vulnerabilities as Record<string, unknown>)
    .map(parseVulnerability)
    .filter((x): x is VulnerablePackage => x !== undefined);
  vulnerabilities.sort((a, b) => rank(b.severity) - rank(a.severity) || a.name.localeCompare(b.name));
  return {
    counts: { ...counts, total: num(meta.vulnerabilities?.total) || vulnerabilities.length },
    vulnerabilities,
    dependencies: {
      prod: num(meta.dependencies?.prod),
      dev: num(meta.dependencies?.dev),
      total: num(meta.dependencies?.total),
    },
  };
}

function parseVulnerability(raw: unknown): VulnerablePackage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.name !== 'string') return undefined;
  const advisories: AdvisoryRef[] = [];
  const via: string[] = [];
  for (const item of Array.isArray(r.via) ? r.via : []) {
    if (typeof item === 'string') via.push(item);
    else if (typeof item === 'object' && item !== null) {
      const a = item as Record<string, unknown>;
      advisories.push({
        id: typeof a.source === 'number' || typeof a.source === 'string' ? a.source : undefined,
        title: typeof a.title === 'string' ? a.title : '(untitled advisory)',
        url: typeof a.url === 'string' ? a.url : undefined,
        severity: severityOf(a.severity),
        range: typeof a.range === 'string' ? a.range : '*',
        cwe: Array.isArray(a.cwe) ? a.cwe.filter((c): c is string => typeof c === 'string') : [],
        cvss:
          typeof (a.cvss as { score?: unknown } | undefined)?.score === 'number'
            ? (a.cvss as { score: number }).score
            : undefined,
      });
    }
  }
  return {
    name: r.name,
    severity: severityOf(r.severity),
    isDirect: r.isDirect === true,
    nodes: Array.isArray(r.nodes) ? r.nodes.filter((n): n is string => typeof n === 'string') : [],
    advisories,
    via,
    fix: describeFix(r.fixAvailable),
  };
}

function describeFix(fix: unknown): string {
  if (fix === true) return '`npm audit fix`';
  if (typeof fix === 'object' && fix !== null) {
    const f = fix as { name?: unknown; version?: unknown; isSemVerMajor?: unknown };
    return `\`npm audit fix --force\` installs ${String(f.name)}@${String(f.version)}${f.isSemVerMajor === true ? ' (a major update)' : ''}`;
  }
  return 'no fixed version known';
}

/** npm's severity names; an unknown one counts as high, as npm's own calculator does. */
export function severityOf(value: unknown): Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value)
    ? (value as Severity)
    : 'high';
}

export function rank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}
