import { Writable } from 'node:stream';
import { join } from 'node:path';
import type { CliIo } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/program.js';

/** The CLI entry the detached gateway and watchdog are started from in tests. */
export const MAIN = join(import.meta.dirname, '../../src/cli/main.ts');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in-process with captured output and the given environment. */
export async function cli(argv: string[], env: NodeJS.ProcessEnv, signal: AbortSignal = new AbortController().signal): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void): Writable =>
    new Writable({
      write(chunk, _enc, done) {
        append(String(chunk));
        done();
      },
    });
  const io: CliIo = {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    env: { PATH: process.env.PATH, ...env },
    signal,
    isTTY: false,
    self: { command: process.execPath, args: ['--import', 'tsx', MAIN] },
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}
