import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from './errors.js';

/** The npm name of this tool's package: how its package.json is told apart from any other. */
export const PACKAGE_NAME = 'runpod-llm-manager';

export interface OwnPackage {
  /** The directory holding this tool's package.json (the repository, or the installed copy). */
  dir: string;
  version: string;
}

/**
 * This tool's own package, found from the running module's location rather than the working
 * directory: the nearest directory above this file whose package.json is named
 * {@link PACKAGE_NAME}. The same walk works from `src/shared/` under tsx and from
 * `dist/shared/` in an installed copy (`<prefix>/lib/node_modules/runpod-llm-manager/`).
 * Read on each call (a few hundred bytes); nothing happens at import.
 *
 * @example
 *   ownPackage(); // { dir: '/usr/lib/node_modules/runpod-llm-manager', version: '0.1.0' }
 */
export function ownPackage(from: string = import.meta.url): OwnPackage {
  const start = dirname(from.startsWith('file:') ? fileURLToPath(from) : from);
  let dir = start;
  for (;;) {
    const found = readPackage(join(dir, 'package.json'));
    if (found !== undefined) return { dir, version: found };
    const parent = dirname(dir);
    if (parent === dir) {
      throw new AppError(
        'CHECK_UNAVAILABLE_NO_PROJECT',
        `cannot find the package.json of ${PACKAGE_NAME} above ${start}`,
        { hint: 'reinstall runpod-llm (the installation is damaged), or pass --project DIR' },
      );
    }
    dir = parent;
  }
}

/** This tool's version from its package.json ('unknown' only if the installation is damaged). */
export function ownVersion(): string {
  try {
    return ownPackage().version;
  } catch {
    return 'unknown';
  }
}

function readPackage(path: string): string | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || (raw as { name?: unknown }).name !== PACKAGE_NAME)
    return undefined;
  const version = (raw as { version?: unknown }).version;
  return typeof version === 'string' && version !== '' ? version : 'unknown';
}
