import type { ConfigProblem, LoadResult } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { AppError } from '../shared/errors.js';
import { type CliIo, line } from './io.js';

/** Prints warnings, and turns config errors into one AppError listing each (path, source, fix). */
export function requireConfig(result: LoadResult, io: CliIo): Config {
  for (const w of result.warnings) line(io.stderr, `warning: ${format(w)}`);
  if (result.config === undefined || result.errors.length > 0) {
    const list = result.errors.map((e) => `  - ${format(e)}`).join('\n');
    throw new AppError('CONFIG_INVALID', `configuration has ${result.errors.length} problem(s):\n${list}`, { hint: 'fix the values above (flags, environment or runpod-llm.json) and run again' });
  }
  return result.config;
}

function format(problem: ConfigProblem): string {
  return `${problem.path}: ${problem.message}${problem.source === 'default' ? '' : ` (from ${problem.source})`}`;
}
