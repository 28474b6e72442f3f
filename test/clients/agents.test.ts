import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ideSnippet } from '../../src/cli/ide-snippets.js';
import { GATEWAY_KEY, MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { BIN, ensureClients } from './client-cache.js';

/*
 * Coding agents run headless, once directly against the scripted vLLM stand-in and once through
 * the gateway: `cn -p` (Continue's CLI, configured with `ide-config continue`'s own snippet) and
 * `opencode run` and Kilo's `kilo run`. The stand-in "model" calls the agent's read tool on the file the prompt names
 * and then answers "Read N bytes." — so the answer shows how much of the file reached the model.
 * Each agent runs in a fresh temporary project and home outside any git repository.
 */

type Target = { baseURL: string; apiKey: string; contextTokens: number };
type Run = { code: number | null; out: string; ms: number };

/** A 61 KB TypeScript file (≈ 12.5k words: ≈ 15k tokens of a real tokenizer). */
const BIG_FILE = Array.from(
  { length: 830 },
  (_, i) => `export function f${i}(a: number, b: number): number { return a * ${i} + b; }`,
).join('\n');
const OVER_PROMPT = `explain this: ${'alpha beta gamma delta '.repeat(1500)}`;

const dirs: string[] = [];
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rlm-agent-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'project'));
  mkdirSync(join(dir, 'home'));
  writeFileSync(join(dir, 'project', 'big.ts'), BIG_FILE);
  return dir;
}

function run(
  command: string,
  args: string[],
  dir: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    // stdin closed: `opencode run` reads piped input until EOF.
    const child = spawn(command, args, {
      cwd: join(dir, 'project'),
      env: { PATH: process.env.PATH, HOME: join(dir, 'home'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const take = (chunk: Buffer) => {
      if (out.length < 8 * 1024 * 1024) out += chunk.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      // Colour codes removed: the visible text is what is compared.
      resolve({ code, out: out.replace(/\x1b\[[0-9;]*m/g, ''), ms: Date.now() - started });
    });
  });
}

function cn(target: Target, prompt: string): Promise<Run> {
  const dir = project();
  writeFileSync(
    join(dir, 'config.yaml'),
    ideSnippet('continue', { baseUrl: target.baseURL, apiKey: target.apiKey, model: MODEL }),
  );
  return run(BIN('cn'), ['-p', prompt, '--config', join(dir, 'config.yaml'), '--auto'], dir, {}, 90_000);
}

/** `opencode run`, or Kilo's CLI (`kilo run`, a fork of opencode that reads the same config). */
function opencode(target: Target, prompt: string, bin: 'opencode' | 'kilo' = 'opencode'): Promise<Run> {
  const dir = project();
  const config = {
    $schema: 'https://opencode.ai/config.json',
    provider: {
      rlm: {
        npm: '@ai-sdk/openai-compatible',
        name: 'runpod-llm',
        options: { baseURL: target.baseURL, apiKey: target.apiKey },
        models: { [MODEL]: { name: MODEL, limit: { context: target.contextTokens, output: 512 } } },
      },
    },
    model: `rlm/${MODEL}`,
    autoupdate: false,
    share: 'disabled',
  };
  writeFileSync(join(dir, 'opencode.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'kilo.json'), JSON.stringify(config));
  const home = join(dir, 'home');
  const xdg = {
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_STATE_HOME: join(home, '.local/state'),
  };
  const env = {
    ...xdg,
    OPENCODE_CONFIG: join(dir, 'opencode.json'),
    KILO_CONFIG: join(dir, 'kilo.json'),
    OPENCODE_DISABLE_AUTOUPDATE: '1',
    KILO_DISABLE_AUTOUPDATE: '1',
    OPENCODE_DISABLE_MODELS_FETCH: '1',
    KILO_DISABLE_MODELS_FETCH: '1',
  };
  return run(BIN(bin), ['run', prompt], dir, env, 150_000);
}

let roomy: TestGateway;
/** One small-context upstream per agent, so each counts only its own requests. */
const tight = new Map<string, TestGateway>();
const targets = (gw: TestGateway, contextTokens: number) => ({
  gateway: { baseURL: gw.baseUrl, apiKey: GATEWAY_KEY, contextTokens },
  direct: { baseURL: `${gw.pod?.url}/v1`, apiKey: POD_KEY, contextTokens },
});

before(
  async () => {
    ensureClients();
    roomy = await startTestGateway({ pod: { maxModelLen: 32_768 } });
    for (const agent of ['cn', 'opencode', 'kilo'])
      tight.set(agent, await startTestGateway({ pod: { maxModelLen: 4096 } }));
  },
  { timeout: 900_000 },
); // the first run installs the pinned clients
after(async () => {
  await roomy?.close();
  for (const gw of tight.values()) await gw.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const answer = (r: Run) => /Read \d+ bytes\./.exec(r.out)?.[0];
const READ = 'read big.ts and summarise';

// Each agent's runs start together (direct, through the gateway, over the context): an agent
// CLI spends most of its time starting up, so the file takes the time of the slowest run.
describe('Continue CLI (cn -p, @continuedev/cli 1.5.47) with the ide-config snippet', () => {
  let runs: Promise<[Run, Run, Run]>;
  before(() => {
    const { gateway, direct } = targets(roomy, 32_768);
    runs = Promise.all([
      cn(gateway, READ),
      cn(direct, READ),
      cn(targets(tight.get('cn') as TestGateway, 4096).gateway, READ),
    ]);
  });

  it('an agent turn that reads a 61 KB file: the whole file reaches the model, same answer both ways', async () => {
    const [viaGateway, viaDirect] = await runs;
    assert.equal(viaGateway.code, 0, viaGateway.out);
    assert.equal(answer(viaGateway), answer(viaDirect));
    assert.equal(answer(viaGateway), `Read ${Buffer.byteLength(`Content of big.ts:\n${BIG_FILE}`)} bytes.`);
  });

  it("over the context: exits 1 at once with the model's limit in the message, no retries", async () => {
    const [, , result] = await runs;
    assert.equal(result.code, 1);
    assert.match(result.out, /Context length exceeded: .*This model's maximum context length is 4096 tokens/);
    assert.equal(
      tight.get('cn')?.pod?.requests.length,
      2,
      'the turn that called the tool and the one refused: no retry',
    );
  });
});

for (const [bin, title] of [
  ['opencode', 'opencode (opencode-ai 1.18.33, run)'],
  ['kilo', 'Kilo Code CLI (@kilocode/cli 7.7.7, kilo run)'],
] as const) {
  describe(title, () => {
    let runs: Promise<[Run, Run, Run]>;
    before(() => {
      const { gateway, direct } = targets(roomy, 32_768);
      runs = Promise.all([
        opencode(gateway, READ, bin),
        opencode(direct, READ, bin),
        opencode(targets(tight.get(bin) as TestGateway, 4096).gateway, OVER_PROMPT, bin),
      ]);
    });

    it('an agent turn that reads a 61 KB file: same answer both ways', async () => {
      const [viaGateway, viaDirect] = await runs;
      assert.equal(viaGateway.code, 0, viaGateway.out);
      assert.ok(answer(viaGateway) !== undefined, viaGateway.out);
      assert.equal(answer(viaGateway), answer(viaDirect));
      // The read tool numbers lines and caps what it returns (its own limit, not ours).
      assert.ok(Number(/\d+/.exec(answer(viaGateway) ?? '')?.[0]) > 50_000);
    });

    it('an over-context prompt ends with the limit in the message (no retry storm)', async () => {
      const [, , result] = await runs;
      assert.equal(result.code, 1, result.out);
      assert.match(result.out, /Error: This model's maximum context length is 4096 tokens/);
      const requests = tight.get(bin)?.pod?.requests.length ?? 0;
      // opencode: the title request, the turn, one compaction attempt. Kilo: its three compaction
      // attempts, then "Compaction exhausted". A bounded handful either way, not a storm.
      assert.ok(requests <= (bin === 'kilo' ? 10 : 4), `${requests} upstream requests`);
    });
  });
}
