import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../shared/errors.js';

/** The fields of a project's package.json the security commands use. */
export interface ProjectManifest {
  name: string;
  version: string;
  description: string | undefined;
  /** The SPDX expression of `license` (or legacy `licenses[]` joined with OR). */
  license: string | undefined;
  /** Who supplies the package: `author` (string or object) from package.json. */
  supplier: { name: string; email?: string; url?: string } | undefined;
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerOptional: Set<string>;
  devDependencies: Record<string, string>;
}

/**
 * Reads `<dir>/package.json`. A missing or unreadable file is a check that cannot run (exit 9).
 *
 * @example
 *   const app = readManifest(process.cwd()); // { name: 'runpod-llm-manager', version: '0.1.0', ... }
 */
export function readManifest(dir: string): ProjectManifest {
  const path = join(dir, 'package.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AppError(
      'CHECK_UNAVAILABLE_NO_PROJECT',
      code === 'ENOENT'
        ? `no package.json in ${dir}`
        : `cannot read ${path} (${code ?? (err as Error).message})`,
      {
        hint: 'run the command in the project directory, or pass --project DIR',
      },
    );
  }
  return parseManifest(raw, path);
}

export function parseManifest(raw: unknown, where = 'package.json'): ProjectManifest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new AppError('CHECK_UNAVAILABLE_NO_PROJECT', `${where} is not a JSON object`, {
      hint: 'fix the file (npm init creates a valid one)',
    });
  }
  const pkg = raw as Record<string, unknown>;
  const meta = (pkg.peerDependenciesMeta ?? {}) as Record<string, { optional?: boolean } | undefined>;
  return {
    name: typeof pkg.name === 'string' ? pkg.name : '',
    version: typeof pkg.version === 'string' ? pkg.version : '',
    description: typeof pkg.description === 'string' ? pkg.description : undefined,
    license: declaredLicense(pkg),
    supplier: supplierOf(pkg.author),
    dependencies: depMap(pkg.dependencies),
    optionalDependencies: depMap(pkg.optionalDependencies),
    peerDependencies: depMap(pkg.peerDependencies),
    peerOptional: new Set(
      Object.entries(meta)
        .filter(([, m]) => m?.optional === true)
        .map(([name]) => name),
    ),
    devDependencies: depMap(pkg.devDependencies),
  };
}

/**
 * The licence a package.json declares: `license` as a string (SPDX expression, or npm's
 * `SEE LICENSE IN …` / `UNLICENSED`), the legacy `{ type }` object, or the legacy `licenses`
 * array (several licences offered: read as OR).
 */
export function declaredLicense(pkg: Record<string, unknown>): string | undefined {
  const typeOf = (value: unknown): string | undefined => {
    if (typeof value === 'string') return value.trim() || undefined;
    if (typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string')
      return (value as { type: string }).type.trim() || undefined;
    return undefined;
  };
  const single = typeOf(pkg.license);
  if (single !== undefined) return single;
  if (Array.isArray(pkg.licenses)) {
    const all = pkg.licenses.map(typeOf).filter((v): v is string => v !== undefined);
    if (all.length === 1) return all[0];
    if (all.length > 1) return `(${all.join(' OR ')})`;
  }
  return undefined;
}

/** npm's person field: `"Name <email> (url)"` or `{ name, email, url }`. */
function supplierOf(author: unknown): ProjectManifest['supplier'] {
  if (typeof author === 'string') {
    const match = /^([^<(]*?)\s*(?:<([^>]*)>)?\s*(?:\(([^)]*)\))?\s*$/.exec(author.trim());
    const name = match?.[1]?.trim();
    if (name === undefined || name === '') return undefined;
    return { name, ...(match?.[2] ? { email: match[2] } : {}), ...(match?.[3] ? { url: match[3] } : {}) };
  }
  if (
    typeof author === 'object' &&
    author !== null &&
    typeof (author as { name?: unknown }).name === 'string'
  ) {
    const a = author as { name: string; email?: unknown; url?: unknown };
    return {
      name: a.name,
      ...(typeof a.email === 'string' ? { email: a.email } : {}),
      ...(typeof a.url === 'string' ? { url: a.url } : {}),
    };
  }
  return undefined;
}

function depMap(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).filter(
      (e): e is [string, string] => typeof e[1] === 'string',
    ),
  );
}
