import { isAppError } from '../shared/errors.js';

/**
 * The CLI's exit codes, in one place. Scripts and cron can branch on them.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | unexpected internal error (a bug: please report it) |
 * | 2 | bad usage or configuration |
 * | 3 | a required tool or service is missing on this machine |
 * | 4 | RunPod refused the API key (missing or invalid RUNPOD_API_KEY) |
 * | 5 | RunPod could not provide a working pod (no capacity, balance, rate limit, unavailable, pod failed to start) |
 * | 6 | a limit stopped the action (budget, runtime, readiness timeout) |
 * | 7 | state problem (locked by another manager, a run already active, corrupt or foreign state file) |
 * | 8 | the gateway (or the watchdog) could not start (port in use, TLS files, the service manager refused) |
 * | 9 | a check could not run (e.g. vulnerability audit unavailable) |
 * | 10 | a check ran and found problems (policy violation, failed security check) |
 * | 130 | interrupted (SIGINT/SIGTERM) before the command finished |
 */
export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  MISSING_DEPENDENCY: 3,
  RUNPOD_AUTH: 4,
  RUNPOD_CAPACITY: 5,
  LIMIT: 6,
  STATE: 7,
  GATEWAY_START: 8,
  CHECK_UNAVAILABLE: 9,
  CHECK_FAILED: 10,
  INTERRUPTED: 130,
} as const;

const BY_CODE: Array<[RegExp, number]> = [
  [/^(CONFIG_|CLI_USAGE)/, EXIT.USAGE],
  [/^MISSING_/, EXIT.MISSING_DEPENDENCY],
  [/^RUNPOD_(AUTH|FORBIDDEN)$/, EXIT.RUNPOD_AUTH],
  [/^RUNPOD_/, EXIT.RUNPOD_CAPACITY],
  [/^LIFECYCLE_POD_FAILED$/, EXIT.RUNPOD_CAPACITY],
  [/^LIFECYCLE_INTERRUPTED$/, EXIT.INTERRUPTED],
  [/^(GW_START_FAILED|LIFECYCLE_WATCHDOG_FAILED|SERVICE_MANAGER_FAILED)$/, EXIT.GATEWAY_START],
  [/^(LIMIT_|LIFECYCLE_READINESS_TIMEOUT|LIFECYCLE_BUDGET)/, EXIT.LIMIT],
  [/^STATE_/, EXIT.STATE],
  [/^(GW_PORT_IN_USE|CONFIG_TLS)$/, EXIT.GATEWAY_START],
  [/^CHECK_UNAVAILABLE/, EXIT.CHECK_UNAVAILABLE],
  [/^CHECK_FAILED/, EXIT.CHECK_FAILED],
];

export function exitCodeFor(err: unknown): number {
  if (!isAppError(err)) return EXIT.INTERNAL;
  if (err.code === 'CONFIG_TLS' || err.code === 'GW_PORT_IN_USE') return EXIT.GATEWAY_START;
  for (const [pattern, code] of BY_CODE) if (pattern.test(err.code)) return code;
  return EXIT.INTERNAL;
}
