import type { SelfCommand } from '../daemons/detached-process.js';

/** What a command may touch of the outside world; tests pass capturing streams. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM for long-running commands. */
  signal: AbortSignal;
  isTTY: boolean;
  /**
   * How to run this CLI again for the detached gateway and watchdog. Default: this process's
   * node, flags and entry script; tests running the CLI in-process name the entry explicitly.
   */
  self?: SelfCommand;
}

export function line(stream: NodeJS.WritableStream, text = ''): void {
  stream.write(`${text}\n`);
}
