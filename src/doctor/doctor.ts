import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkStatePermissions } from '../security/config-checks.js';
import { openState, STATE_FILE } from '../state/db.js';
import { activeRun } from '../state/runs.js';
import { listVerdicts, type Verdict, VERDICT_NAMES } from '../state/verdicts.js';
import { readDaemon, type DaemonName } from '../daemons/detached-process.js';
import { readGatewayUrl } from '../daemons/gateway-daemon.js';
import type { CheckStatus, Check, DoctorDeps, DoctorOptions } from './check.js';
import { runpodChecks } from './runpod-checks.js';
import { gatewayHealth } from './status.js';

/*
 * `runpod-llm doctor`: read-only checks of everything a first `up` depends on, each
 * with a one-line finding and, when it is not ok, the fix. Nothing is created, changed or
 * stopped. The RunPod checks are in runpod-checks.ts; this module adds the local ones (state
 * permissions, the gateway and watchdog, the stored verdicts).
 */

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
  verdicts: Verdict[];
}

export async function runDoctor(deps: DoctorDeps, options: DoctorOptions): Promise<DoctorReport> {
  const checks: Check[] = [];
  checks.push(...(await runpodChecks(deps, options)));
  checks.push(statePermissions(options.home));
  const stateInfo = readStateInfo(options.home);
  checks.push(await gatewayCheck(deps, options.home, stateInfo.runActive));
  checks.push(watchdogCheck(options.home, stateInfo.runActive));
  checks.push(verdictCheck(stateInfo.verdicts));
  return { ok: checks.every((c) => c.status !== 'fail'), checks, verdicts: stateInfo.verdicts };
}

/** The state directory 0700 and everything in it 0600: the same walk as `security report`. */
export function statePermissions(home: string): Check {
  const item = checkStatePermissions(home);
  const status: CheckStatus = item.status === 'fail' ? 'fail' : item.status === 'warn' ? 'warn' : 'ok';
  return {
    id: 'state_permissions',
    status,
    summary: item.detail,
    ...(item.fix === undefined ? {} : { fix: item.fix }),
  };
}

function readStateInfo(home: string): { runActive: boolean; verdicts: Verdict[] } {
  if (!existsSync(join(home, STATE_FILE))) return { runActive: false, verdicts: [] };
  try {
    const state = openState({ home, readonly: true });
    try {
      let verdicts: Verdict[] = [];
      try {
        verdicts = listVerdicts(state);
      } catch {
        // a state older than the verdicts table: nothing checked yet
      }
      return { runActive: activeRun(state) !== undefined, verdicts };
    } finally {
      state.close();
    }
  } catch {
    return { runActive: false, verdicts: [] };
  }
}

async function gatewayCheck(deps: DoctorDeps, home: string, runActive: boolean): Promise<Check> {
  const name = 'gateway';
  const info = readDaemon(home, name);
  const url = readGatewayUrl(home);
  if (info?.running === true) {
    const health = url === undefined ? 'unknown' : await gatewayHealth(deps.fetch, url);
    const status: CheckStatus = health === 'ok' || health === 'degraded' ? 'ok' : 'fail';
    return {
      id: name,
      status,
      summary: `running (pid ${info.pid}${info.service ? ', as a service' : ''}) at ${url ?? '(address unknown)'}: health ${health}`,
      ...(status === 'fail'
        ? {
            fix: `see ${join(home, 'logs', 'gateway.log')}; \`runpod-llm down\` then \`runpod-llm up\` starts it afresh`,
          }
        : {}),
      data: { pid: info.pid, service: info.service, url: url ?? null, health },
    };
  }
  return notRunning(home, name, info, runActive);
}

function watchdogCheck(home: string, runActive: boolean): Check {
  const name = 'watchdog';
  const info = readDaemon(home, name);
  if (info?.running === true)
    return {
      id: name,
      status: 'ok',
      summary: `running (pid ${info.pid}${info.service ? ', as a service' : ''})`,
      data: { pid: info.pid, service: info.service },
    };
  return notRunning(home, name, info, runActive);
}

function notRunning(
  home: string,
  name: DaemonName,
  info: ReturnType<typeof readDaemon>,
  runActive: boolean,
): Check {
  const log = join(home, 'logs', `${name}.log`);
  if (info !== null) {
    const fix =
      name === 'gateway'
        ? `the next watchdog pass starts it again (or run \`runpod-llm up\`); why it died: ${log}`
        : `\`runpod-llm up\` starts it again (\`runpod-llm service install\` keeps it running); why it died: ${log}`;
    return {
      id: name,
      status: runActive ? 'fail' : 'warn',
      summary: `not running, though its pid file (pid ${info.pid}) says it should be`,
      fix,
      data: { pid: info.pid, running: false },
    };
  }
  if (!runActive)
    return { id: name, status: 'ok', summary: 'not running (no run is active)', data: { running: false } };
  if (name === 'watchdog')
    return {
      id: name,
      status: 'fail',
      summary:
        'a run is active but no watchdog loop runs: runtime, idle and budget limits are enforced only by a cron `runpod-llm watch`',
      fix: '`runpod-llm up` starts it, or `runpod-llm service install`',
      data: { running: false },
    };
  return {
    id: name,
    status: 'warn',
    summary: 'a run is active but no gateway of this home runs (`up --no-gateway`?)',
    fix: '`runpod-llm gateway` or `runpod-llm up` serves it',
    data: { running: false },
  };
}

function verdictCheck(verdicts: Verdict[]): Check {
  const byName = new Map(verdicts.map((v) => [v.name, v]));
  const words: Record<string, string> = {
    json_start_command: 'JSON start command',
    self_stop: 'pod self-stop',
  };
  const parts = VERDICT_NAMES.map((n) => {
    const v = byName.get(n);
    return `${words[n]}: ${v === undefined ? 'never checked' : `${v.value.replace('_', ' ')} (${new Date(v.checkedAt).toISOString().slice(0, 10)})`}`;
  });
  const unknown = VERDICT_NAMES.filter((n) => (byName.get(n)?.value ?? 'unknown') === 'unknown');
  const notHonoured = VERDICT_NAMES.filter((n) => byName.get(n)?.value === 'not_honoured');
  if (notHonoured.length > 0) {
    return {
      id: 'live_behaviour',
      status: 'warn',
      summary: parts.join('; '),
      fix: notHonoured.includes('self_stop')
        ? "pods cannot stop themselves: keep the watchdog running (`runpod-llm service install`), the guard's lease cannot end a pod"
        : '`up` needs an image without an entrypoint to keep the guard (docker/vllm-noentry, `up --image`; README "When things go wrong")',
    };
  }
  if (unknown.length > 0)
    return {
      id: 'live_behaviour',
      status: 'warn',
      summary: parts.join('; '),
      fix: '`runpod-llm doctor --live` settles it with a CPU pod for under two minutes (about $0.002)',
    };
  return { id: 'live_behaviour', status: 'ok', summary: parts.join('; ') };
}
