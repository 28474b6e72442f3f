#!/usr/bin/env node
/**
 * The `runpod-llm` entry point and the only place that touches process-wide state: signals,
 * stdio and the exit code. Everything else receives them as arguments.
 */
import { runCli } from './program.js';

const controller = new AbortController();
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signals++;
    // A second Ctrl-C means "now": skip the graceful drain.
    if (signals > 1) process.exit(130);
    controller.abort();
  });
}

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
  isTTY: process.stdout.isTTY === true,
});
process.exitCode = code;
// Long-running commands have closed their servers; do not wait for stray timers.
if (code !== 0 || controller.signal.aborted) setTimeout(() => process.exit(code), 200).unref();
