import { createInterface } from 'node:readline/promises';
import { readGuardSource } from '../../guard/recipe.js';
import { cheapestCpu, runLiveProbe, type LiveProbeResult } from '../../doctor/live-probe.js';
import { probeApiFor } from '../../doctor/live-probe-api.js';
import type { Check } from '../../doctor/check.js';
import { runDoctor } from '../../doctor/doctor.js';
import { AppError } from '../../shared/errors.js';
import { openState } from '../../state/db.js';
import { listVerdicts } from '../../state/verdicts.js';
import { EXIT } from '../exit-codes.js';
import { type CliIo, line } from '../io.js';
import { loadManagerContext, runpodClient, systemClock } from '../manager-context.js';
import { realSleep } from '../../shared/sleep.js';
import type { DoctorFlags } from '../command-options.js';

/**
 * `runpod-llm doctor`: read-only checks, each with its fix; exit 10 when one fails.
 * `--live` (with consent: `--yes` or a prompt) then runs the CPU-pod probe of doctor/live-probe.ts and
 * stores its verdicts; exit 0 only when both behaviours are honoured.
 */
export async function runDoctorCommand(
  flags: DoctorFlags,
  io: CliIo,
  ask: ((question: string) => Promise<string>) | null = io.isTTY && process.stdin.isTTY === true
    ? terminalQuestion
    : null,
): Promise<number> {
  const ctx = loadManagerContext(io, {}, flags.config);
  const apiUrl = ctx.config.manager.runpod_api_url;
  const apiKey = io.env.RUNPOD_API_KEY;
  const report = await runDoctor(
    { fetch: globalThis.fetch, clock: systemClock },
    { home: ctx.home, apiUrl, apiKey, gpuTypes: ctx.config.manager.gpu_types ?? [] },
  );
  const out = (t = ''): void => line(io.stdout, t);
  if (flags.json !== true) printChecks(report.checks, io);

  if (flags.live !== true) {
    if (flags.json === true)
      out(
        JSON.stringify(
          { ok: report.ok, checks: report.checks, verdicts: report.verdicts.map(verdictJson) },
          null,
          2,
        ),
      );
    return report.ok ? EXIT.OK : EXIT.CHECK_FAILED;
  }

  const blocking = report.checks.find(
    (c) => (c.id === 'runpod_key' || c.id === 'runpod_api') && c.status === 'fail',
  );
  if (blocking !== undefined) {
    throw new AppError(
      'CHECK_FAILED_DOCTOR',
      `doctor --live needs RunPod to accept the key first: ${blocking.summary}`,
      { hint: blocking.fix ?? 'fix the check above and run it again' },
    );
  }
  const api = runpodClient(ctx, io.env);
  const probeApi = probeApiFor(api, { fetch: globalThis.fetch, apiUrl, apiKey: apiKey ?? '' });
  const cpu = cheapestCpu(await probeApi.cpuOffers());
  if (cpu === undefined)
    throw new AppError('RUNPOD_NO_CAPACITY', 'RunPod lists no CPU type with stock for pods right now', {
      hint: 'run `runpod-llm doctor --live` again later',
    });
  const estimate = (cpu.pricePerHr * 120) / 3600;
  if (flags.yes !== true) {
    const question = `doctor --live creates one CPU pod on your RunPod account (${cpu.id}, ${cpu.vcpuCount} vCPU at $${cpu.pricePerHr.toFixed(3)}/h) for under two minutes (at most about $${estimate.toFixed(4)}) and terminates it. Go on? [y/N] `;
    if (ask === null) {
      throw new AppError(
        'CLI_USAGE',
        'doctor --live creates a billed pod, and there is no terminal to ask for consent',
        {
          hint: `run \`runpod-llm doctor --live --yes\` to agree (one ${cpu.id} CPU pod for under two minutes, about $${estimate.toFixed(4)})`,
        },
      );
    }
    const answer = (await ask(question)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') {
      line(io.stderr, 'nothing created');
      return EXIT.OK;
    }
  }

  const state = openState({ home: ctx.home });
  let result: LiveProbeResult;
  try {
    result = await runLiveProbe(
      {
        api: probeApi,
        state,
        clock: systemClock,
        sleep: realSleep,
        signal: io.signal,
        onStep: (t) => line(io.stderr, t),
      },
      {
        guardSource: readGuardSource(),
        runpodApiUrl: apiUrl,
        cpu,
        ...(flags.image === undefined ? {} : { image: flags.image }),
      },
    );
  } finally {
    state.close();
  }
  const bothHonoured = result.jsonStartCommand.value === 'honoured' && result.selfStop.value === 'honoured';
  if (flags.json === true) {
    out(JSON.stringify({ ok: report.ok, checks: report.checks, live: result }, null, 2));
  } else {
    printLive(result, io);
  }
  return report.ok && bothHonoured ? EXIT.OK : EXIT.CHECK_FAILED;
}

function verdictJson(v: ReturnType<typeof listVerdicts>[number]): Record<string, unknown> {
  return { name: v.name, value: v.value, checkedAt: new Date(v.checkedAt).toISOString(), detail: v.detail };
}

const MARK: Record<Check['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

function printChecks(checks: Check[], io: CliIo): void {
  for (const c of checks) {
    line(io.stdout, `${MARK[c.status]} ${c.id.padEnd(17)} ${c.summary}`);
    if (c.fix !== undefined && c.status !== 'ok') line(io.stdout, `     ${''.padEnd(17)} fix: ${c.fix}`);
  }
}

function printLive(r: LiveProbeResult, io: CliIo): void {
  const out = (t = ''): void => line(io.stdout, t);
  const word = (v: string): string => v.replace('_', ' ');
  out();
  out(
    `doctor --live: probe pod ${r.podId} (${r.cpu.id}, ${r.cpu.vcpuCount} vCPU, $${r.cpu.pricePerHr.toFixed(3)}/h, ${r.image})`,
  );
  out(`  JSON start command: ${word(r.jsonStartCommand.value)} (${r.jsonStartCommand.detail})`);
  out(`  pod self-stop:      ${word(r.selfStop.value)} (${r.selfStop.detail})`);
  out(
    `  args read back:     ${r.argsUnchanged === null ? 'not shown by RunPod' : r.argsUnchanged ? 'as sent' : `changed by RunPod: ${JSON.stringify(r.argsReadBack?.slice(0, 160))}`}`,
  );
  out(
    `  terminated after ${Math.round(r.seconds)} s; cost about $${r.costUsd.toFixed(4)} ($${r.cpu.pricePerHr.toFixed(3)}/h × ${Math.round(r.seconds)} s)`,
  );
  if (r.leftovers.length > 0)
    out(`  also terminated ${r.leftovers.join(', ')}, left by an earlier interrupted probe`);
  out(
    `  stored in the state (${new Date(r.checkedAt).toISOString().slice(0, 10)}); \`runpod-llm doctor\` shows it, \`up\` uses it`,
  );
  if (r.jsonStartCommand.value === 'not_honoured')
    out(
      '  → v2 does not run the JSON start command: `up` needs an image without an entrypoint (docker/vllm-noentry, `up --image`) to keep the guard, or `--unguarded` (README: "When things go wrong")',
    );
  if (r.selfStop.value === 'not_honoured')
    out(
      "  → pods cannot stop themselves: keep the watchdog running (`runpod-llm service install`); the guard's lease cannot end a pod",
    );
  if (r.jsonStartCommand.value === 'unknown' || r.selfStop.value === 'unknown') {
    out('  → not settled; last log lines:');
    for (const l of r.logTail) out(`      ${l}`);
  }
}

async function terminalQuestion(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}
