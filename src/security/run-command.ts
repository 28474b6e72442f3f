import { execFile } from 'node:child_process';
import { AppError } from '../shared/errors.js';

/** What a child process left behind; `code` is null when it was killed (timeout, signal). */
export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a program without a shell; injected so tests can stand in for npm. */
export type RunCommand = (
  file: string,
  args: readonly string[],
  options: RunOptions,
) => Promise<CommandResult>;

/**
 * The real runner. A missing program is an AppError (`MISSING_NPM`, or `MISSING_PROGRAM` for
 * another; exit 3); a non-zero exit is not an error here, because npm reports findings through
 * its exit code.
 *
 * @example
 *   const { code, stdout } = await runCommand('npm', ['sbom', '--sbom-format', 'cyclonedx'], { cwd });
 */
export const runCommand: RunCommand = (file, args, options) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 256 * 1024 * 1024,
        encoding: 'utf8',
        windowsHide: true,
      },
      (error, stdout, stderr) => {
        const code = (error as NodeJS.ErrnoException | null)?.code;
        if (code === 'ENOENT') {
          reject(
            new AppError(
              file === 'npm' ? 'MISSING_NPM' : 'MISSING_PROGRAM',
              `\`${file}\` was not found on PATH`,
              { hint: `install Node.js with npm (\`${file}\` ships with it) and try again` },
            ),
          );
          return;
        }
        const exit =
          error === null
            ? 0
            : typeof (error as { code?: unknown }).code === 'number'
              ? (error as { code: number }).code
              : null;
        resolve({ code: exit, stdout, stderr });
      },
    );
  });

/** The first `npm error` line of npm's stderr (its one-line reason), without the prefix. */
export function npmErrorLine(stderr: string): string | undefined {
  for (const line of stderr.split('\n')) {
    const match = /^npm (?:error|ERR!) (?!code |A complete log|\s*$)(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined) return match[1].trim();
  }
  return undefined;
}
