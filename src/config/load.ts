import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { convert, ENV_VARS, FLAG_NAMES, kindName } from './names.js';
import { applyRules, type ConfigProblem } from './rules.js';
import { type Config, configSchema } from './schema.js';

/*
 * Configuration: read (file, environment, flags) → merge → parse (zod) → rules.
 * Returns every problem at once, each with its dotted path, where the value came from and what
 * is valid. Nothing here exits or prints: the CLI decides.
 *
 * @example
 *   const { config, errors, warnings } = loadConfig({ env: process.env, flags: { proxy_port: 9000 } });
 */

export interface LoadResult {
  config: Config | undefined;
  errors: ConfigProblem[];
  warnings: ConfigProblem[];
  /** The config file that was read, if any. */
  file: string | undefined;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Flag values keyed by config path (`proxy_port`, `upstream.url`). */
  flags?: Record<string, unknown>;
  /** Explicit config file (`--config`); otherwise RUNPOD_LLM_CONFIG or ./runpod-llm.json if present. */
  configPath?: string;
  cwd?: string;
}

/** Paths that hold secrets: they may come from a file, with a warning; they are never echoed. */
const SECRET_PATHS = new Set(['upstream.api_key', 'api_keys']);

export function loadConfig(options: LoadOptions = {}): LoadResult {
  const env = options.env ?? {};
  const cwd = options.cwd ?? process.cwd();
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const sources = new Map<string, string>();
  /** Config path → what the user typed for it (flags and environment only). */
  const givens = new Map<string, string>();
  const raw: Record<string, unknown> = {};

  const file =
    options.configPath ??
    env.RUNPOD_LLM_CONFIG ??
    (existsSync(join(cwd, 'runpod-llm.json')) ? join(cwd, 'runpod-llm.json') : undefined);
  if (file !== undefined) readConfigFile(resolve(cwd, file), raw, sources, errors, warnings);

  for (const [name, path, kind] of ENV_VARS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const given = `${name}=${SECRET_PATHS.has(path) ? '…' : shown(value)}`;
    const converted = convert(value, kind);
    if (converted === undefined) {
      errors.push({ path, message: `not ${kindName(kind)}`, source: `env ${name}`, given });
      continue;
    }
    setPath(raw, path, converted);
    sources.set(path, `env ${name}`);
    givens.set(path, given);
  }
  applySeedEndpoint(env, raw, sources, errors, warnings);

  for (const [path, value] of Object.entries(options.flags ?? {})) {
    if (value === undefined) continue;
    setPath(raw, path, value);
    const flag = FLAG_NAMES[path] ?? `--${path}`;
    sources.set(path, `flag ${flag}`);
    givens.set(path, flagText(flag, value));
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push(fromIssue(issue, sources, givens));
    return { config: undefined, errors, warnings, file };
  }
  const config = parsed.data;
  config.home ??= env.HOME === undefined ? join(homedir(), '.runpod-llm') : join(env.HOME, '.runpod-llm');
  applyRules(config, sources, givens, errors, warnings);
  return { config: errors.length === 0 ? config : undefined, errors, warnings, file };
}

function readConfigFile(
  path: string,
  raw: Record<string, unknown>,
  sources: Map<string, string>,
  errors: ConfigProblem[],
  warnings: ConfigProblem[],
): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    errors.push({
      path: '(file)',
      message: `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      source: `file ${path}`,
    });
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    errors.push({
      path: '(file)',
      message: `config file ${path} is not valid JSON: ${(err as Error).message}`,
      source: `file ${path}`,
    });
    return;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push({
      path: '(file)',
      message: `config file ${path} must hold a JSON object`,
      source: `file ${path}`,
    });
    return;
  }
  for (const [key, entry] of Object.entries(value)) {
    if (key === '$schema') continue;
    raw[key] = entry;
    if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      for (const sub of Object.keys(entry as Record<string, unknown>))
        sources.set(`${key}.${sub}`, `file ${path}`);
    }
    sources.set(key, `file ${path}`);
  }
  for (const secret of SECRET_PATHS) {
    if (getPath(raw, secret) !== undefined) {
      warnings.push({
        path: secret,
        message:
          'a secret in the config file: prefer the environment (GATEWAY_API_KEYS / UPSTREAM_API_KEY) and keep the file 0600',
        source: `file ${path}`,
      });
    }
  }
}

/** The original Python tool's RUNPOD_ENDPOINT is a full `.../v1/chat/completions` URL; we take its `/v1` base. */
function applySeedEndpoint(
  env: NodeJS.ProcessEnv,
  raw: Record<string, unknown>,
  sources: Map<string, string>,
  errors: ConfigProblem[],
  warnings: ConfigProblem[],
): void {
  const endpoint = env.RUNPOD_ENDPOINT;
  if (endpoint === undefined || endpoint === '' || getPath(raw, 'upstream.url') !== undefined) return;
  const match = /^(https?:\/\/.+\/v1)\/chat\/completions\/?$/.exec(endpoint);
  if (match?.[1] === undefined) {
    errors.push({
      path: 'upstream.url',
      message:
        'RUNPOD_ENDPOINT must be a full URL ending in /v1/chat/completions (or set UPSTREAM_URL to the /v1 base)',
      source: 'env RUNPOD_ENDPOINT',
    });
    return;
  }
  setPath(raw, 'upstream.url', match[1]);
  sources.set('upstream.url', 'env RUNPOD_ENDPOINT');
  warnings.push({
    path: 'upstream.url',
    message: `RUNPOD_ENDPOINT is the original Python tool's name; using ${match[1]} as UPSTREAM_URL`,
    source: 'env RUNPOD_ENDPOINT',
  });
}

/** A value as shown after `NAME=` or a flag: bare, quoted only when it has spaces, capped. */
function shown(value: string): string {
  const capped = value.length > 60 ? `${value.slice(0, 60)}…` : value;
  return /[\s"]/.test(capped) || capped === '' ? JSON.stringify(capped) : capped;
}

/** `--runtime 5x`, `--gpu A --gpu B`, `--unguarded` (a switch), as the user typed it. */
function flagText(flag: string, value: unknown): string {
  if (typeof value === 'boolean') return flag;
  if (Array.isArray(value)) return value.map((v) => `${flag} ${shown(String(v))}`).join(' ');
  return `${flag} ${shown(String(value))}`;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  let node: unknown = target;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function fromIssue(
  issue: z.core.$ZodIssue,
  sources: Map<string, string>,
  givens: Map<string, string>,
): ConfigProblem {
  const path = issue.path.reduce<string>(
    (acc, part) =>
      typeof part === 'number' ? `${acc}[${part}]` : acc === '' ? String(part) : `${acc}.${String(part)}`,
    '',
  );
  const top = path.replace(/\[\d+\]$/, '');
  const secret = SECRET_PATHS.has(top);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown setting(s): ${issue.keys.join(', ')}`;
  // Never echo a secret's value back (zod messages can include the input).
  if (secret) message = message.replace(/"[^"]*"/g, '…');
  const given = givens.get(top) ?? givens.get(path);
  return {
    path: path === '' ? '(root)' : path,
    message,
    source: sources.get(top) ?? sources.get(path) ?? 'default',
    ...(given === undefined ? {} : { given }),
  };
}
