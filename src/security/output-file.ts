import { lstatSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { AppError } from '../shared/errors.js';

/**
 * Where a report may be written: inside the working directory, unless forced. A path that
 * climbs out (`../x`, `/etc/x`), a parent directory that is a symlink leading out, or an
 * existing symlink at the target would let a crafted argument or a planted link overwrite a
 * file elsewhere; `--force` is the explicit way to do that on purpose.
 *
 * @example
 *   const path = resolveOutputPath('sbom.cdx.json', process.cwd(), false);
 */
export function resolveOutputPath(out: string, cwd: string, force: boolean): string {
  const target = resolve(cwd, out);
  if (force) return target;
  const refuse = (why: string): never => {
    throw new AppError('CLI_USAGE_OUTPUT_OUTSIDE_CWD', `refusing to write ${out}: ${why}`, { hint: 'write inside the current directory, or add --force to write there on purpose' });
  };
  if (!inside(resolve(cwd), target)) refuse('it is outside the current directory');
  const base = realpathSync(cwd);
  let parent: string;
  try {
    parent = realpathSync(dirname(target));
  } catch {
    return refuse(`its directory ${dirname(out)} does not exist`);
  }
  if (!inside(base, parent)) refuse('its directory leads outside the current directory (symlink)');
  try {
    if (lstatSync(target).isSymbolicLink()) refuse('it is a symbolic link');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return target;
}

function inside(base: string, path: string): boolean {
  const rel = relative(base, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Writes through a temporary file and a rename, so a reader never sees half a report. */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}
