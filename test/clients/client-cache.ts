import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Real clients, pinned, installed once into `.cache/clients` (gitignored) with npm's ordinary
 * client: `npm install --prefix .cache/clients`. Later runs reuse the folder while the pins are
 * unchanged (the marker file holds them). Versions are the newest that run on Node 20 where the
 * latest declares Node 22 (`ai` 7, `@ai-sdk/*` 3-4, `@langchain/openai` ≥ 1.5.9); `openai` 7
 * declares Node 22 but runs on 20, and is tested here on 20 deliberately.
 */
export const CLIENT_PINS = [
  'openai6@npm:openai@6.49.0',
  'openai7@npm:openai@7.59.0',
  'ai@6.0.325',
  '@ai-sdk/openai-compatible@2.0.92',
  '@ai-sdk/openai@3.0.141',
  '@langchain/openai@1.5.8',
  '@langchain/core@1.4.0',
  '@continuedev/cli@1.5.47',
  'opencode-ai@1.18.33',
  // 7.8.1 (latest) names platform binaries that are not published; 7.7.7's are.
  '@kilocode/cli@7.7.7',
] as const;

export const CACHE = join(import.meta.dirname, '../../.cache/clients');
const MARKER = join(CACHE, 'pins.json');

/** Installs the pinned clients unless the cache already holds exactly these pins. */
export function ensureClients(): void {
  const wanted = JSON.stringify(CLIENT_PINS);
  if (existsSync(MARKER) && readFileSync(MARKER, 'utf8') === wanted) return;
  mkdirSync(CACHE, { recursive: true });
  if (!existsSync(join(CACHE, 'package.json')))
    writeFileSync(join(CACHE, 'package.json'), '{"name":"client-cache","private":true}\n');
  execFileSync(
    'npm',
    ['install', '--prefix', CACHE, '--no-audit', '--no-fund', '--loglevel=error', ...CLIENT_PINS],
    { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 },
  );
  writeFileSync(MARKER, wanted);
}

/** Imports a package as resolved from the cache folder (not from the project's node_modules). */
export async function importClient<T = Record<string, unknown>>(name: string): Promise<T> {
  const loader = join(CACHE, `load-${name.replace(/[^\w]/g, '_')}.mjs`);
  if (!existsSync(loader))
    writeFileSync(
      loader,
      `export * from ${JSON.stringify(name)};\nimport * as all from ${JSON.stringify(name)};\nexport default all.default ?? all;\n`,
    );
  return (await import(pathToFileURL(loader).href)) as T;
}

export const BIN = (name: string): string => join(CACHE, 'node_modules', '.bin', name);
