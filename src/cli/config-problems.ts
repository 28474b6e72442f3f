import type { LoadResult } from '../config/load.js';
import type { ConfigProblem } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { AppError } from '../shared/errors.js';
import { type CliIo, line } from './io.js';

/** Prints warnings, and turns config errors into one AppError listing each (path, source, fix). */
export function requireConfig(result: LoadResult, io: CliIo): Config {
  for (const w of result.warnings) line(io.stderr, `warning: ${formatConfigProblem(w)}`);
  if (result.config === undefined || result.errors.length > 0) {
    const list = result.errors.map((e) => `  - ${formatConfigProblem(e)}`).join('\n');
    throw new AppError('CONFIG_INVALID', `configuration has ${result.errors.length} problem(s):\n${list}`, {
      hint: 'fix the values above (flags, environment or runpod-llm.json) and run again',
    });
  }
  return result.config;
}

/**
 * One line per problem, led by what the user typed when a flag or the environment set it
 * (`--runtime 5x: not a duration: … (manager.runtime_limit)`, `PORT=abc: not a whole number
 * (proxy_port)`); values from the file or defaults are named by their path and source.
 */
export function formatConfigProblem(problem: ConfigProblem): string {
  if (problem.given !== undefined)
    return `${problem.given}: ${withoutEcho(problem.message)} (${problem.path})`;
  return `${problem.path}: ${problem.message}${problem.source === 'default' ? '' : ` (from ${problem.source})`}`;
}

/** `"5x" is not a duration` → `not a duration`: the value is already in front of the message. */
function withoutEcho(message: string): string {
  return message.replace(/^"(?:[^"\\]|\\.)*" is /, '');
}
