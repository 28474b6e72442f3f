import { join } from 'node:path';
import type { MachineFacts, ReportItem } from './config-checks.js';

/*
 * Checks of the running gateway process, found through `<home>/gateway.pid` (written by
 * `runpod-llm up`). Linux exposes a process's environment in /proc/<pid>/environ as it was at
 * exec time: deleting a variable inside the process does not remove it from there (nor from
 * the process's memory), so a key found there is a key the gateway holds.
 */

/** The gateway's pid when its pid file names a live gateway process; a reason otherwise. */
export function findGateway(home: string, machine: MachineFacts): { pid: number } | { absent: string } {
  let text: string;
  try {
    text = machine.readFile(join(home, 'gateway.pid')).toString('utf8');
  } catch {
    return { absent: 'not running (no gateway.pid)' };
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return { absent: 'not running (gateway.pid holds no pid)' };
  if (!machine.alive(pid)) return { absent: `not running (stale gateway.pid: pid ${pid} has exited)` };
  try {
    const argv = machine.readFile(`/proc/${pid}/cmdline`).toString('utf8').split('\u0000');
    if (!argv.includes('gateway'))
      return { absent: `not running (pid ${pid} from gateway.pid is another program)` };
  } catch {
    // No /proc: trust the pid file.
  }
  return { pid };
}

/** Fails when RUNPOD_API_KEY (or HF_TOKEN) is in the gateway's environment. Never prints values. */
export function checkGatewayEnvironment(home: string, machine: MachineFacts): ReportItem {
  const id = 'gateway.no_runpod_key';
  const gateway = findGateway(home, machine);
  if ('absent' in gateway) return { id, status: 'skip', detail: `gateway ${gateway.absent}` };
  let environ: string[];
  try {
    environ = machine.readFile(`/proc/${gateway.pid}/environ`).toString('utf8').split('\u0000');
  } catch (err) {
    return {
      id,
      status: 'unavailable',
      detail: `cannot read the environment of gateway pid ${gateway.pid} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      fix: 'run the report as the user that runs the gateway',
    };
  }
  const held = ['RUNPOD_API_KEY', 'HF_TOKEN'].filter((name) =>
    environ.some((entry) => entry.startsWith(`${name}=`) && entry.length > name.length + 1),
  );
  if (held.length > 0) {
    return {
      id,
      status: 'fail',
      detail: `the gateway (pid ${gateway.pid}) holds ${held.join(' and ')} in its environment: a compromised gateway could create pods and spend money`,
      fix: 'restart it without the variable: `runpod-llm down && runpod-llm up` (up starts the gateway with a clean environment), or unset it before `runpod-llm gateway`',
    };
  }
  return { id, status: 'pass', detail: `the gateway (pid ${gateway.pid}) does not hold RUNPOD_API_KEY` };
}

/** Root is never needed (ports above 1024, files in the user's home): warn when used. */
export function checkRoot(home: string, machine: MachineFacts): ReportItem {
  const id = 'process.not_root';
  const gateway = findGateway(home, machine);
  if (!('absent' in gateway)) {
    try {
      const status = machine.readFile(`/proc/${gateway.pid}/status`).toString('utf8');
      const uid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1]);
      if (uid === 0)
        return {
          id,
          status: 'warn',
          detail: `the gateway (pid ${gateway.pid}) runs as root`,
          fix: 'run it as an ordinary user: it needs no privileges',
        };
      if (Number.isInteger(uid))
        return { id, status: 'pass', detail: `the gateway (pid ${gateway.pid}) runs as uid ${uid}` };
    } catch {
      // Fall through to this process's uid.
    }
  }
  if (machine.uid === undefined) return { id, status: 'skip', detail: 'this platform has no uids' };
  if (machine.uid === 0)
    return {
      id,
      status: 'warn',
      detail: 'running as root: a gateway started from here would run as root too',
      fix: 'use an ordinary user account: nothing here needs root',
    };
  return { id, status: 'pass', detail: `running as uid ${machine.uid}` };
}
