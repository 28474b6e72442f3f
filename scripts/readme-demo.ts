// `npm run readme:demo`: runs `runpod-llm demo` and writes its output into README.md between
// README_START and README_END, so the README's recorded output cannot drift from the demo.
// `--check` writes nothing and exits 1 when the README differs from a fresh run
// (test/docs/readme-demo.test.ts runs it).
//
// What changes from run to run (ports, pod ids and names, the run id, keys, pids, temp paths,
// times and timings, the cost of a few seconds) is replaced by stable placeholders, so a rerun
// gives the same text when nothing in the demo changed. The first-token time stays in the README
// as recorded (readers should see it); the check masks it on both sides. The Continue snippet is shortened to one
// line (the README shows the snippets in their own section).

import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const README_START = '<!-- demo-output:start -->';
export const README_END = '<!-- demo-output:end -->';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Gives each distinct value matched by `pattern` (group 1) a numbered placeholder, in order of first appearance. */
function numbered(text: string, pattern: RegExp, label: (n: number) => string): string {
  const names = new Map<string, string>();
  for (const match of text.matchAll(pattern)) {
    const value = match[1];
    if (value !== undefined && !names.has(value)) names.set(value, label(names.size + 1));
  }
  let out = text;
  for (const [value, name] of names) out = out.split(value).join(name);
  return out;
}

/**
 * The demo's output with everything that varies between runs replaced by placeholders.
 *
 * @example
 *   normaliseDemoOutput('watchdog: started (pid 10348, a pass every 30s; …)')
 *   // 'watchdog: started (pid <pid>, a pass every 30s; …)'
 */
export function normaliseDemoOutput(raw: string): string {
  let text = raw.replace(/\r\n/g, '\n');
  // The Continue snippet: the lines after its heading up to the blank line.
  text = text.replace(/^(IDE \(Continue[^\n]*:)\n(?:[ \t]+[^\n]*\n)+/m, '$1 … a ready-to-paste snippet …\n');
  // Temp home (any TMPDIR), gateway key, run id, timestamps, pids.
  text = text.replace(/(?:\/[^\s/]+)*\/runpod-llm-demo-[A-Za-z0-9]+/g, '/tmp/runpod-llm-demo-XXXXXX');
  text = text.replace(/\brlm_[A-Za-z0-9_-]{16,}/g, 'rlm_<gateway-key>');
  text = text.replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<run-id>');
  text = text.replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/g, '<time>');
  text = text.replace(/\bpid \d+/g, 'pid <pid>');
  // Ports: named by the line that introduces them, any other in order of appearance.
  const named: Array<[RegExp, string]> = [
    [/RUNPOD_API_URL=http:\/\/127\.0\.0\.1:(\d+)/, 'api-port'],
    [/RUNPOD_POD_URL_TEMPLATE=http:\/\/127\.0\.0\.1:(\d+)/, 'proxy-port'],
    [/Endpoint:\s+http:\/\/127\.0\.0\.1:(\d+)/, 'gateway-port'],
  ];
  for (const [pattern, name] of named) {
    const port = pattern.exec(text)?.[1];
    if (port !== undefined)
      text = text.replace(new RegExp(`127\\.0\\.0\\.1:${port}\\b`, 'g'), `127.0.0.1:<${name}>`);
  }
  text = numbered(text, /127\.0\.0\.1:(\d+)\b/g, (n) => `<port-${n}>`);
  // Pod names, then pod ids (RunPod's are 14 lowercase letters and digits), numbered per run.
  text = numbered(text, /\b(runpod-llm-[a-z0-9]{8})\b/g, (n) => `runpod-llm-<name-${n}>`);
  text = numbered(text, /\b([a-z0-9]{14}) \((?:runpod-llm-|restarted\))/g, (n) => `<pod-${n}>`);
  // Timings and what depends on them.
  text = text.replace(/^(\s*)\[\d+(?:\.\d+)?(?:ms|s|m)\]/gm, '$1[<t>]');
  text = text.replace(/ready after \d+(?:\.\d+)?(?:ms|s|m)\b/g, 'ready after <t>');
  text = text.replace(/\bup \d+(?:\.\d+)?(?:ms|s|m)\b/g, 'up <t>');
  text = text.replace(/^(idle\s+)\d+(?:\.\d+)?(?:ms|s|m)\b/gm, '$1<t>');
  text = text.replace(/\((\d+)m left\)/g, '(<m> left)');
  text = text.replace(/Done in \d+(?:\.\d+)? s\./g, 'Done in <t>.');
  text = text.replace(
    /^(cost\s+)this run \$[\d.]+, today \$[\d.]+, this month \$[\d.]+/gm,
    '$1this run $<cost>, today $<cost>, this month $<cost>',
  );
  return text.replace(/[ \t]+$/gm, '').replace(/\n+$/, '\n');
}

/**
 * The recorded output as the check compares it: the one timing the README keeps (the first-token
 * time, which the reader should see) is masked too, so a rerun on another machine still matches.
 */
export function comparableDemoText(text: string): string {
  return text.replace(/first token after \d+(?:\.\d+)? ?ms\b/g, 'first token after <t>');
}

/** Runs `runpod-llm demo` as `npm run demo` does; stdout and stderr in one file keep their order. */
export async function runDemo(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'readme-demo-'));
  const file = join(dir, 'out.txt');
  const fd = openSync(file, 'w');
  try {
    const code = await new Promise<number | null>((resolveExit, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo'], {
        cwd: root,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, NO_COLOR: '1' },
      });
      child.on('error', reject);
      child.on('exit', (exitCode) => resolveExit(exitCode));
    });
    closeSync(fd);
    const output = readFileSync(file, 'utf8');
    if (code !== 0) throw new Error(`runpod-llm demo exited ${code}:\n${output}`);
    return output;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The README with `output` as its recorded demo output. */
export function withDemoOutput(readme: string, output: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${README_START} … ${README_END} block`);
  const block = `${README_START}\n\`\`\`\n${output.endsWith('\n') ? output : `${output}\n`}\`\`\`\n`;
  return readme.slice(0, start) + block + readme.slice(end);
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const next = withDemoOutput(readme, normaliseDemoOutput(await runDemo()));
  const current = comparableDemoText(next) === comparableDemoText(readme);
  if (check && current) {
    process.stdout.write('README.md: the recorded demo output is current\n');
    return 0;
  }
  if (check) {
    const was = comparableDemoText(readme).split('\n');
    const now = comparableDemoText(next).split('\n');
    const line = was.findIndex((l, i) => l !== now[i]);
    process.stderr.write(
      `README.md: the recorded demo output differs from a fresh run (first at line ${line + 1}):\n` +
        `  README: ${was[line] ?? '(end)'}\n  demo:   ${now[line] ?? '(end)'}\n` +
        'Run `npm run readme:demo` and commit README.md.\n',
    );
    return 1;
  }
  writeFileSync(readmePath, next);
  process.stdout.write(
    current
      ? 'README.md: the recorded demo output is current (its first-token time re-recorded)\n'
      : 'README.md: recorded demo output updated\n',
  );
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`readme:demo: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
