/*
 * Reads what a real pod would run from its `args`, so the emulator's vLLM stand-in serves the
 * same model name under the same key as vLLM would.
 *
 * Two forms reach RunPod (docs/runpod-contract.md, Start-command forms):
 * - plain vLLM arguments for the image's `vllm serve` entrypoint:
 *   `<model> --host 0.0.0.0 --port 8000 --served-model-name NAME --api-key KEY ...`
 * - the JSON start command `{"entrypoint":["bash","-c"],"cmd":["<shell command>"]}`, where the
 *   vLLM invocation is somewhere inside the shell command (`vllm serve M ...` or
 *   `python3 -m vllm.entrypoints.openai.api_server --model M ...`), possibly after `&&`.
 * vLLM also takes the key from the environment (`VLLM_API_KEY`), and a shell command may say
 * `--api-key "$VLLM_API_KEY"`; both are resolved against the pod's env.
 */

/** What a pod's `args` would make vLLM serve. */
export interface VllmLaunch {
  form: 'args' | 'json';
  /** The model argument (`vllm serve M` / `--model M`), if any. */
  model: string | undefined;
  /** `--served-model-name` (first name), else the model. */
  servedModelName: string;
  /** `--api-key`, else env VLLM_API_KEY, else none (vLLM then leaves /v1 open). */
  apiKey: string | undefined;
  /** `--port`, default 8000 as in vLLM. */
  port: number;
  maxModelLen: number | undefined;
}

/** vLLM's default model when none is given (historically facebook/opt-125m). */
const VLLM_DEFAULT_MODEL = 'facebook/opt-125m';
const SEPARATORS = new Set(['&&', '||', ';', '|', '&']);

export function parseVllmLaunch(args: string, env: Readonly<Record<string, string>> = {}): VllmLaunch {
  const json = parseJsonStartCommand(args);
  const form = json === undefined ? 'args' : 'json';
  let tokens: string[];
  if (json === undefined) {
    tokens = tokenize(args, env);
  } else {
    const all = tokenize(json.join(' '), env);
    tokens = vllmInvocation(all) ?? all;
  }

  let model: string | undefined;
  let served: string | undefined;
  let apiKey: string | undefined;
  let port = 8000;
  let maxModelLen: number | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] ?? '';
    if (SEPARATORS.has(token)) break;
    const [flag, inline] =
      token.startsWith('--') && token.includes('=') ? splitOnce(token) : [token, undefined];
    const value = (): string | undefined => inline ?? tokens[++i];
    if (flag === '--model') model = value();
    else if (flag === '--served-model-name') served = value();
    else if (flag === '--api-key') apiKey = value();
    else if (flag === '--port') port = Number(value()) || 8000;
    else if (flag === '--max-model-len') maxModelLen = parseTokenCount(value());
    else if (!flag.startsWith('-') && model === undefined && i === firstPositional(tokens)) model = flag;
  }
  if (apiKey === undefined || apiKey === '') apiKey = env.VLLM_API_KEY === '' ? undefined : env.VLLM_API_KEY;
  return { form, model, servedModelName: served ?? model ?? VLLM_DEFAULT_MODEL, apiKey, port, maxModelLen };
}

/** The `cmd` of a JSON start command, or undefined when `args` is not one. */
function parseJsonStartCommand(args: string): string[] | undefined {
  const trimmed = args.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(trimmed) as { entrypoint?: unknown; cmd?: unknown };
    if (!Array.isArray(value.cmd) || !value.cmd.every((c) => typeof c === 'string')) return undefined;
    return value.cmd;
  } catch {
    return undefined;
  }
}

/** The tokens after `vllm serve` or `-m vllm.entrypoints.openai.api_server`, up to a separator. */
function vllmInvocation(tokens: string[]): string[] | undefined {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if ((t === 'vllm' || t.endsWith('/vllm')) && tokens[i + 1] === 'serve') return tokens.slice(i + 2);
    if (t === '-m' && tokens[i + 1] === 'vllm.entrypoints.openai.api_server') return tokens.slice(i + 2);
  }
  return undefined;
}

/** The index of the first token that is a positional argument (the model for `vllm serve`). */
function firstPositional(tokens: string[]): number {
  // Flags that take no value; every other `--flag` consumes the next token.
  const boolean = new Set([
    '--trust-remote-code',
    '--enforce-eager',
    '--enable-prefix-caching',
    '--disable-log-requests',
    '--enable-auto-tool-choice',
  ]);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if (!t.startsWith('-')) return i;
    if (!t.includes('=') && !boolean.has(t)) i++;
  }
  return -1;
}

function splitOnce(token: string): [string, string] {
  const at = token.indexOf('=');
  return [token.slice(0, at), token.slice(at + 1)];
}

/** vLLM accepts `8192`, and in newer versions `8k` / `1m`. */
function parseTokenCount(value: string | undefined): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(value ?? '');
  if (m === null) return undefined;
  const unit = m[2]?.toLowerCase() === 'k' ? 1024 : m[2]?.toLowerCase() === 'm' ? 1024 * 1024 : 1;
  return Math.round(Number(m[1]) * unit);
}

/**
 * POSIX-shell-like word splitting: single and double quotes, backslash escapes, `$VAR`/`${VAR}`
 * expansion from `env` outside single quotes, and `&&`, `||`, `;`, `|`, `&` as separate tokens.
 */
export function tokenize(input: string, env: Readonly<Record<string, string>> = {}): string[] {
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let quote: '"' | "'" | undefined;
  const push = (): void => {
    if (inToken) tokens.push(current);
    current = '';
    inToken = false;
  };
  for (let i = 0; i < input.length; i++) {
    const c = input[i] ?? '';
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else current += c;
      continue;
    }
    if (c === '\\' && i + 1 < input.length) {
      current += input[++i];
      inToken = true;
      continue;
    }
    if (c === '$') {
      const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(input.slice(i));
      if (m !== null) {
        current += env[m[1] ?? m[2] ?? ''] ?? '';
        inToken = true;
        i += m[0].length - 1;
        continue;
      }
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else current += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inToken = true;
    } else if (/\s/.test(c)) {
      push();
    } else if (c === '&' || c === '|' || c === ';') {
      push();
      const two = input.slice(i, i + 2);
      if (two === '&&' || two === '||') {
        tokens.push(two);
        i++;
      } else tokens.push(c);
    } else {
      current += c;
      inToken = true;
    }
  }
  push();
  return tokens;
}

/** The shell command of a JSON start command (`cmd` joined), or undefined when `args` is not one. */
export function jsonStartShell(args: string): string | undefined {
  return parseJsonStartCommand(args)?.join(' ');
}

/**
 * What vLLM's argparse says about plain `args` given to the image's `vllm serve` entrypoint:
 * the tokens it cannot place (the JSON start command read as plain words, or a second model
 * argument), or undefined when they parse. `vllm serve [model_tag] [options]`: one positional.
 */
export function unrecognizedVllmArgs(
  args: string,
  env: Readonly<Record<string, string>> = {},
): string[] | undefined {
  // The JSON text as plain words: argparse takes the first as the model and refuses the rest.
  if (parseJsonStartCommand(args) !== undefined) {
    const words = args.trim().split(/\s+/);
    return words.length > 1 ? words.slice(1) : [args.trim()];
  }
  const tokens = tokenize(args, env);
  const first = firstPositional(tokens);
  if (first === -1) return undefined;
  const extra: string[] = [];
  const boolean = new Set([
    '--trust-remote-code',
    '--enforce-eager',
    '--enable-prefix-caching',
    '--disable-log-requests',
    '--enable-auto-tool-choice',
  ]);
  for (let i = first + 1; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if (t.startsWith('-')) {
      if (!t.includes('=') && !boolean.has(t)) i++;
    } else extra.push(t);
  }
  return extra.length === 0 ? undefined : extra;
}

/** The text each `echo` line of a shell command prints (markers a start script writes first). */
export function shellEchoLines(shell: string, env: Readonly<Record<string, string>> = {}): string[] {
  const lines: string[] = [];
  for (const raw of shell.split('\n')) {
    const m = /^\s*echo\s+(.*)$/.exec(raw);
    if (m === null) continue;
    const words = tokenize(m[1] ?? '', env);
    const end = words.findIndex((w) => SEPARATORS.has(w) || w.startsWith('>'));
    lines.push((end === -1 ? words : words.slice(0, end)).filter((w) => w !== '-e' && w !== '-n').join(' '));
  }
  return lines;
}
