import { AppError } from '../shared/errors.js';
import { installedTree } from './installed-tree.js';
import { canonicalId, DEFAULT_ALLOWED, type LicenseCategory } from './license-table.js';
import { expressionAllowed, expressionCategory, parseSpdx, SpdxSyntaxError } from './spdx.js';

/*
 * `runpod-llm security licenses`: the licence of every production dependency, read from its
 * installed package.json, classified and checked against a policy. The default policy allows
 * the permissive licences; copyleft and unknown licences are violations until allowed.
 */

/** Which licences pass. */
export interface LicensePolicy {
  /** Allowed SPDX ids (case-insensitive). Default: {@link DEFAULT_ALLOWED}. */
  allow?: readonly string[];
  /** Packages accepted whatever their licence, by `name` or `name@version` (a reviewed exception). */
  allowPackages?: readonly string[];
}

export interface PackageLicense {
  name: string;
  version: string;
  path: string;
  /** As declared; undefined when package.json has none. */
  license: string | undefined;
  category: LicenseCategory;
  allowed: boolean;
  /** Why it is not allowed (violations only). */
  reason?: string;
}

export interface LicenseReport {
  packages: PackageLicense[];
  violations: PackageLicense[];
  counts: Record<LicenseCategory, number>;
  allow: string[];
}

/**
 * @example
 *   const report = checkLicenses(process.cwd(), { allow: ['MIT', 'ISC'] });
 *   if (report.violations.length > 0) process.exitCode = 10;
 */
export function checkLicenses(cwd: string, policy: LicensePolicy = {}): LicenseReport {
  const allow = (policy.allow ?? DEFAULT_ALLOWED).map((id) => id.trim()).filter(Boolean);
  if (allow.length === 0)
    throw new AppError('CLI_USAGE_LICENSES', 'the allow-list is empty', {
      hint: 'pass SPDX ids separated by ";", e.g. --allow "MIT;ISC;Apache-2.0"',
    });
  const allowed = new Set(allow.map((id) => (canonicalId(id) ?? id).toLowerCase()));
  const exceptions = new Set(policy.allowPackages ?? []);
  const packages = installedTree(cwd).map((pkg) =>
    classify(pkg.name, pkg.version, pkg.path, pkg.manifest.license, allowed, exceptions),
  );
  const counts: Record<LicenseCategory, number> = {
    permissive: 0,
    'weak-copyleft': 0,
    'strong-copyleft': 0,
    unknown: 0,
  };
  for (const p of packages) counts[p.category]++;
  return { packages, violations: packages.filter((p) => !p.allowed), counts, allow };
}

export function classify(
  name: string,
  version: string,
  path: string,
  license: string | undefined,
  allowed: ReadonlySet<string>,
  exceptions: ReadonlySet<string> = new Set(),
): PackageLicense {
  const base = { name, version, path, license };
  const excepted = exceptions.has(name) || exceptions.has(`${name}@${version}`);
  if (license === undefined)
    return verdict({ ...base, category: 'unknown' }, excepted, 'no licence declared in its package.json');
  if (/^UNLICENSED$/i.test(license))
    return verdict(
      { ...base, category: 'unknown' },
      excepted,
      'UNLICENSED: its authors grant no licence to use it',
    );
  if (/^SEE LICEN[CS]E IN /i.test(license))
    return verdict(
      { ...base, category: 'unknown' },
      excepted,
      `"${license}": a custom licence file, read it and allow the package with --allow-package`,
    );
  try {
    const node = parseSpdx(license);
    const category = expressionCategory(node);
    if (expressionAllowed(node, allowed)) return { ...base, category, allowed: true };
    const why =
      category === 'unknown'
        ? `${license} is not a licence this tool knows; read it, then allow it with --allow`
        : `${license} is ${category.replace('-', ' ')}, not in the allow-list`;
    return verdict({ ...base, category }, excepted, why);
  } catch (err) {
    if (!(err instanceof SpdxSyntaxError)) throw err;
    return verdict({ ...base, category: 'unknown' }, excepted, `"${license}" is not an SPDX expression`);
  }
}

function verdict(
  pkg: Omit<PackageLicense, 'allowed' | 'reason'>,
  excepted: boolean,
  reason: string,
): PackageLicense {
  return excepted ? { ...pkg, allowed: true } : { ...pkg, allowed: false, reason };
}
