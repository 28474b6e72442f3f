import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startEmulator } from '../../emulator/emulator.js';
import { readGatewayUrl } from '../../daemons/gateway-daemon.js';
import { checkPodOpenRoutes } from '../../security/pod-checks.js';
import { AppError } from '../../shared/errors.js';
import { type CliIo, line } from '../io.js';
import { runDownCommand } from './down.js';
import { runStatusCommand } from './status.js';
import { runUpCommand } from './up.js';
import { runWatchCommand } from './watch.js';
import type { DemoFlags } from '../command-options.js';
import type { Pod } from '../../runpod/schemas.js';

/** Pod start-up in the demo: long enough to see each status go by, short enough to wait for. */
const DEMO_SCHEDULE = { provisioningMs: 1_500, startingMs: 1_500, loadMs: 2_000 };

/** Settings the user's own environment must not change inside the demo. */
const FOREIGN = [
  'RUNPOD_API_URL',
  'RUNPOD_API_KEY',
  'RUNPOD_POD_URL_TEMPLATE',
  'RUNPOD_LLM_HOME',
  'RUNPOD_LLM_CONFIG',
  'UPSTREAM_URL',
  'UPSTREAM_API_KEY',
  'RUNPOD_ENDPOINT',
  'GATEWAY_API_KEYS',
  'GATEWAY_AUTH',
  'HOST',
  'PORT',
  'LOG_FILE',
  'HF_TOKEN',
];

/**
 * `runpod-llm demo`: the whole product on this machine with no account and no money. A local
 * RunPod emulator (REST v2 + a vLLM stand-in per pod) plays RunPod; the real commands run
 * against it — `up` (plan, create, readiness, route, detached watchdog and gateway), a streamed
 * chat through the gateway with the official `openai` SDK, `status`, the pod URL probed from outside
 * (the guard refuses vLLM's open routes), a pod death repaired by the watchdog, and `down`. Everything runs on loopback in a temporary home, removed afterwards.
 */
export async function runDemoCommand(io: CliIo, flags: DemoFlags = {}): Promise<number> {
  const out = (text = ''): void => line(io.stdout, text);
  const step = (n: number, text: string): void => {
    out();
    out(`── ${n}. ${text}`);
  };
  const started = performance.now();
  const home = mkdtempSync(join(tmpdir(), 'runpod-llm-demo-'));
  const emulator = await startEmulator({
    schedule: DEMO_SCHEDULE,
    speed: flags.speed ?? 1,
    standin: { chunkDelayMs: STANDIN_CHUNK_MS, chunks: 12 },
  });
  // An empty config file: a runpod-llm.json in the current directory must not leak into the demo.
  const configFile = join(home, 'demo-config.json');
  writeFileSync(configFile, '{}\n', { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...io.env };
  for (const name of Object.keys(env))
    if (FOREIGN.includes(name) || name.startsWith('RUNPOD_LLM_')) delete env[name];
  Object.assign(env, {
    RUNPOD_API_URL: emulator.apiUrl,
    RUNPOD_API_KEY: emulator.apiKey,
    RUNPOD_POD_URL_TEMPLATE: emulator.podUrlTemplate,
    RUNPOD_LLM_HOME: home,
    RUNPOD_LLM_CONFIG: configFile,
    HOST: '127.0.0.1',
    PORT: '0',
    RUNPOD_LLM_RUNTIME_LIMIT: '30m',
    RUNPOD_LLM_IDLE_LIMIT: '10m',
    RUNPOD_LLM_BUDGET_USD: '1.00',
    RUNPOD_LLM_READINESS_POLL: '250ms',
    RUNPOD_LLM_WATCH_INTERVAL: '30s',
  });
  const sub: CliIo = { ...io, env, isTTY: io.isTTY };
  let upDone = false;
  try {
    out('runpod-llm demo: the whole flow on this machine — no account, no money, nothing leaves loopback');
    step(1, 'a local RunPod: the emulator (REST v2 API + pod proxy with a vLLM stand-in per pod)');
    out(`   RUNPOD_API_URL=${emulator.apiUrl}`);
    out(`   RUNPOD_POD_URL_TEMPLATE=${emulator.podUrlTemplate}`);
    out(`   RUNPOD_LLM_HOME=${home}   (state, keys, pid files and logs; 0700/0600)`);

    step(2, 'runpod-llm up --dry-run   (the plan; creates nothing)');
    await must(runUpCommand({ dryRun: true }, sub), 'up --dry-run');

    step(3, 'runpod-llm up   (create → wait until the model answers → route → watchdog + gateway)');
    upDone = true;
    await must(runUpCommand({}, sub), 'up');

    const baseUrl = readGatewayUrl(home);
    const key = readFileSync(join(home, 'gateway.key'), 'utf8').trim();
    if (baseUrl === undefined) throw new Error('the gateway URL was not recorded');
    step(4, `the openai SDK → ${baseUrl} (the gateway adds the pod's own key; yours never reaches the pod)`);
    const client = new OpenAI({ baseURL: baseUrl, apiKey: key, maxRetries: 0 });
    const model = (await client.models.list()).data[0]?.id ?? 'unknown';
    io.stdout.write(`   streamed chat with ${model}: `);
    const t0 = performance.now();
    let firstTokenMs: number | undefined;
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    const stream = await client.chat.completions.create({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Write a haiku about idle GPUs' }],
    });
    for await (const chunk of stream) {
      const text = chunk.choices[0]?.delta?.content ?? '';
      if (text !== '' && firstTokenMs === undefined) firstTokenMs = performance.now() - t0;
      io.stdout.write(text);
      if (chunk.usage) usage = chunk.usage;
    }
    out();
    out(
      `   first token after ${Math.round(firstTokenMs ?? 0)} ms (${STANDIN_CHUNK_MS} ms of it is the stand-in's pace between chunks, as a GPU's decode; the rest is the path), ${usage?.prompt_tokens ?? '?'} prompt + ${usage?.completion_tokens ?? '?'} completion tokens`,
    );
    // The gateway books usage for the watchdog about once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_200));

    step(5, 'runpod-llm status');
    await must(runStatusCommand({}, sub), 'status');

    step(
      6,
      'the pod URL as a stranger sees it (what `runpod-llm security report` checks): POST /invocations and /tokenize, no key',
    );
    const probe = await checkPodOpenRoutes(home);
    out(`   ${probe.status.toUpperCase()}  ${probe.detail}`);

    const podId = emulator.pods.list()[0]?.id;
    if (podId !== undefined) {
      step(
        7,
        `vLLM on the pod crashes for good (emulator fault on ${podId}); RunPod restarts the container in place, the pod stays RUNNING; one watchdog pass, as cron's \`runpod-llm watch\` would run it`,
      );
      // A pass first, so the watchdog has seen the pod's uptime; the crash then shows as a restart.
      // It tells a restart from clock slack only past 5 s of uptime (pod-observation.ts), so on a
      // fast machine the demo first lets the young pod reach that (a real pod is up for minutes).
      for (let i = 0; i < 60 && uptimeOf(emulator.pods.get(podId)) < 7; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await must(runWatchCommand({}, captureIo(sub).io), 'watch');
      emulator.pods.crash(podId, true);
      await must(runWatchCommand({}, sub), 'watch');
      out('   …the replacement starts; the next passes route it once it answers:');
      for (let i = 0; i < 40; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const capture = captureIo(sub);
        await runWatchCommand({}, capture.io);
        if (capture.text().includes('route_ready')) {
          io.stdout.write(capture.text());
          break;
        }
      }
      // The gateway re-reads its routes within a second; same URL, same key, new pod.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const again = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'still there?' }],
        max_tokens: 6,
      });
      out(`   same endpoint, same key, new pod: "${again.choices[0]?.message.content ?? ''}"`);
    }

    step(8, 'runpod-llm down   (stop the watchdog, terminate the pod, clear the route, stop the gateway)');
    upDone = false;
    await must(runDownCommand({}, sub), 'down');
    const left = emulator.pods.list().length;
    out(`   pods left on the (emulated) RunPod: ${left}`);
    out();
    out(
      `Done in ${((performance.now() - started) / 1000).toFixed(1)} s. With a RunPod account: export RUNPOD_API_KEY=... && runpod-llm up`,
    );
    return left === 0 && probe.status === 'pass' ? 0 : 1;
  } finally {
    if (upDone) await runDownCommand({}, { ...sub, stdout: io.stderr }).catch(() => 1);
    await emulator.close();
    rmSync(home, { recursive: true, force: true });
  }
}

/** The vLLM stand-in's pause between streamed chunks (its role chunk comes at once, the first text after this). */
const STANDIN_CHUNK_MS = 40;

function uptimeOf(pod: Pod | undefined): number {
  return pod?.runtime?.uptime ?? 0;
}

async function must(code: Promise<number>, what: string): Promise<void> {
  const c = await code;
  if (c !== 0)
    throw new AppError('DEMO_STEP_FAILED', `demo step \`${what}\` exited with code ${c}`, {
      hint: 'the lines above say why; this should not happen in the demo: please report it',
    });
}

/** Runs a command with its stdout kept aside (the demo prints only the interesting pass). */
function captureIo(io: CliIo): { io: CliIo; text(): string } {
  let text = '';
  const sink = {
    write: (chunk: string | Uint8Array): boolean => ((text += String(chunk)), true),
  } as unknown as NodeJS.WritableStream;
  return { io: { ...io, stdout: sink, stderr: sink }, text: () => text };
}
