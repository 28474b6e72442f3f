import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  linkSync,
  lstatSync,
  openSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { AppError } from '../shared/errors.js';

/**
 * Where a report may be written when the path comes from configuration or a default, not from
 * the user's own command line: inside the working directory, unless forced. A path that
 * climbs out (`../x`, `/etc/x`), a parent directory that is a symlink leading out, or an
 * existing symlink at the target would let a planted setting or link overwrite a file
 * elsewhere; `--force` is the explicit way to do that on purpose. (A path the user typed is
 * theirs: see {@link checkExplicitOutput}.)
 *
 * @example
 *   const path = resolveOutputPath('security-report.json', process.cwd(), false);
 */
export function resolveOutputPath(out: string, cwd: string, force: boolean): string {
  const target = resolve(cwd, out);
  if (force) return target;
  const refuse = (why: string): never => {
    throw new AppError('CLI_USAGE_OUTPUT_OUTSIDE_CWD', `refusing to write ${out}: ${why}`, {
      hint: 'write inside the current directory, or add --force to write there on purpose',
    });
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

/**
 * A path the user typed (`--out FILE`): their choice, anywhere they can write, but never through
 * a symbolic link at the target and never over an existing file without `--force`. Checked
 * before the (slow) content is made, so a refusal costs nothing; {@link writeExplicitOutput}
 * checks again when it writes, without a window between the check and the write.
 *
 * @example
 *   const path = checkExplicitOutput('/srv/reports/sbom.cdx.json', process.cwd(), false);
 *   writeExplicitOutput(path, text, false);
 */
export function checkExplicitOutput(out: string, cwd: string, force: boolean): string {
  const target = resolve(cwd, out);
  let dir;
  try {
    dir = statSync(dirname(target));
  } catch (err) {
    throw outputError(
      out,
      `its directory ${dirname(target)} ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`}`,
      'create the directory first, or choose another path',
    );
  }
  if (!dir.isDirectory())
    throw outputError(out, `${dirname(target)} is not a directory`, 'choose another path');
  let existing;
  try {
    existing = lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return target;
    throw outputError(
      out,
      `cannot inspect it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'choose another path',
    );
  }
  refuseExisting(out, existing, force);
  return target;
}

/**
 * Writes a file the user named, mode 0644 whatever the umask. The content goes to a fresh
 * temporary file beside the target (created exclusively, never through a link), then takes
 * the target's name: with a hard link, which fails if anything (a file, a link planted since
 * the check) holds the name — or, with `force`, with a rename, which replaces a regular file
 * and never writes through a link. A reader never sees half a file.
 */
export function writeExplicitOutput(path: string, content: string, force: boolean): void {
  const tmp = writeTemporary(path, content);
  try {
    if (force) {
      // rename(2) replaces the name itself: a symlink there would be replaced, never followed.
      // Still, a link at the target is refused (the user may have meant the file behind it).
      let existing;
      try {
        existing = lstatSync(path);
      } catch {
        existing = undefined;
      }
      if (existing !== undefined) refuseExisting(path, existing, true);
      renameSync(tmp, path);
      return;
    }
    try {
      linkSync(tmp, path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') refuseExisting(path, lstatSync(path), false);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      // A filesystem without hard links: create the target exclusively and write it in place.
      const fd = openSync(path, EXCLUSIVE, 0o644);
      try {
        fchmodSync(fd, 0o644);
        writeAll(fd, content);
      } finally {
        closeSync(fd);
      }
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw outputError(
      path,
      `cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      'choose another path',
    );
  } finally {
    unlinkQuietly(tmp);
  }
}

/** Create-or-fail, never through a symlink (O_NOFOLLOW where the platform has it). */
const EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

/** A fresh file beside `path` holding `content`, mode `mode` whatever the umask. */
function writeTemporary(path: string, content: string, mode = 0o644): string {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, EXCLUSIVE, mode);
  } catch (err) {
    throw outputError(
      path,
      `cannot create a file in ${dirname(path)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'choose a directory you can write to',
    );
  }
  try {
    fchmodSync(fd, mode);
    writeAll(fd, content);
  } catch (err) {
    unlinkQuietly(tmp);
    throw outputError(
      path,
      `cannot write it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'check the free space and try again',
    );
  } finally {
    closeSync(fd);
  }
  return tmp;
}

function writeAll(fd: number, content: string): void {
  const bytes = Buffer.from(content);
  for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset);
}

function refuseExisting(
  out: string,
  existing: { isSymbolicLink(): boolean; isFile(): boolean; isDirectory(): boolean },
  force: boolean,
): void {
  if (existing.isSymbolicLink())
    throw outputError(
      out,
      'it is a symbolic link (never followed)',
      'remove the link, or write to the file it points to by its own path',
    );
  if (existing.isDirectory())
    throw outputError(out, 'it is a directory', 'name a file, e.g. <dir>/sbom.cdx.json');
  if (!existing.isFile()) throw outputError(out, 'it is not a regular file', 'choose another path');
  if (!force)
    throw outputError(out, 'it already exists', 'add --force to replace it, or choose another path');
}

function outputError(out: string, why: string, hint: string): AppError {
  return new AppError('CLI_USAGE_OUTPUT', `refusing to write ${out}: ${why}`, { hint });
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone (renamed into place)
  }
}

/**
 * Writes through a temporary file and a rename, so a reader never sees half a report; replaces
 * the file there (a symlink there is replaced, never followed). For paths already checked by
 * {@link resolveOutputPath}.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  const tmp = writeTemporary(path, content, mode);
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkQuietly(tmp);
    throw outputError(
      path,
      `cannot write it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'choose another path with --out',
    );
  }
}
