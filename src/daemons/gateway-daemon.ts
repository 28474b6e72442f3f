import { createServer } from 'node:net';
import { join } from 'node:path';
import { AppError } from '../shared/errors.js';
import { readTextIfExists, writePrivateFile } from '../shared/secret-file.js';
import { appendAudit } from '../state/audit.js';
import type { StateDb } from '../state/db.js';
import {
  logFile,
  logTail,
  readDaemon,
  type SelfCommand,
  startDaemon,
  waitForLogLine,
  writeOwnPidFile,
} from './detached-process.js';

/**
 * The gateway daemon `up` leaves behind: started (or found), revived when it dies, announced when
 * a service manager runs it. It must never hold the RunPod key (a leaked gateway must not be
 * able to create pods and spend money). The watchdog daemon is watchdog-daemon.ts; both run on
 * detached-process.ts.
 */

/** Never handed to the gateway: RunPod and Hugging Face secrets, and a static upstream that would bypass the state's routes. */
export const GATEWAY_WITHHELD_ENV = [
  'RUNPOD_API_KEY',
  'HF_TOKEN',
  'UPSTREAM_URL',
  'UPSTREAM_API_KEY',
  'RUNPOD_ENDPOINT',
] as const;

export function gatewayEnv(
  env: NodeJS.ProcessEnv,
  settings: { home: string; host: string; port: number },
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {
    ...env,
    RUNPOD_LLM_HOME: settings.home,
    HOST: settings.host,
    PORT: String(settings.port),
  };
  for (const name of GATEWAY_WITHHELD_ENV) delete out[name];
  return out;
}

export function gatewayUrlFile(home: string): string {
  return join(home, 'gateway.url');
}

export function readGatewayUrl(home: string): string | undefined {
  return readTextIfExists(gatewayUrlFile(home))?.trim() || undefined;
}

/** The address local clients use for a gateway bound to `host` (a wildcard bind answers on loopback). */
export function clientHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/**
 * Fails with GW_PORT_IN_USE when the gateway could not bind; `up` checks this before creating a
 * pod, so a taken port never leaves a billing pod without its gateway. Port 0 picks a free one.
 */
export async function reservePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EACCES'
          ? new AppError(
              'GW_PORT_IN_USE',
              `port ${port} on ${host} is already in use, so the gateway could not start there`,
              { hint: 'stop what uses it, or set another port (PORT, or proxy_port in runpod-llm.json)' },
            )
          : err,
      );
    });
    server.listen(port, host, () => {
      const chosen = (server.address() as { port: number }).port;
      server.close(() => resolve(chosen));
    });
  });
}

export interface GatewayService {
  url: string;
  pid: number;
  reused: boolean;
  log: string;
}

export interface EnsureGatewayOptions {
  home: string;
  host: string;
  /** 0: a free port. */
  port: number;
  https: boolean;
  self: SelfCommand;
  env: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
}

/** What `runpod-llm gateway` prints once it listens (src/cli/commands/gateway.ts). */
const LISTENING = /runpod-llm gateway listening on (https?):\/\/\S+?:(\d+)\/v1/;

/**
 * Reuses a running gateway of this home, or starts one and waits for its own "listening on"
 * line in its log. The port comes from that line: with port 0 the gateway binds a free port
 * itself, so no other process can take a port between our choosing it and the gateway binding it
 * (and a connection test cannot mistake another server on that port for the gateway).
 */
export async function ensureGateway(options: EnsureGatewayOptions): Promise<GatewayService> {
  const { home } = options;
  const running = readDaemon(home, 'gateway');
  const known = readGatewayUrl(home);
  if (running?.running === true && known !== undefined)
    return { url: known, pid: running.pid, reused: true, log: logFile(home, 'gateway') };

  const log = logFile(home, 'gateway');
  const started = startDaemon({
    home,
    name: 'gateway',
    self: options.self,
    args: ['gateway'],
    env: gatewayEnv(options.env, { home, host: options.host, port: options.port }),
  });
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const outcome = await waitForLogLine(started, 0, LISTENING, timeoutMs);
  if (outcome.kind === 'exited') {
    throw new AppError(
      'GW_START_FAILED',
      `the gateway exited at start (code ${String(outcome.code)}): ${logTail(started.log, 3).replace(/\n/g, ' | ')}`,
      {
        hint: `see ${started.log} and ${log}; the pod is up and watched: fix the cause and run \`runpod-llm up\` again to start the gateway`,
      },
    );
  }
  if (outcome.kind === 'timeout') {
    throw new AppError(
      'GW_START_FAILED',
      `the gateway did not report listening on ${options.host}:${options.port === 0 ? '(a free port)' : options.port} within ${Math.round(timeoutMs / 1000)} s`,
      {
        hint: `see ${started.log} and ${log}; run \`runpod-llm up\` again to retry (the pod is kept)`,
      },
    );
  }
  const port = Number(outcome.match[2]);
  const host = clientHost(options.host);
  const url = `${options.https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}/v1`;
  writePrivateFile(gatewayUrlFile(home), `${url}\n`);
  return { url, pid: started.pid, reused: false, log };
}

export interface ReviveGatewayOptions {
  home: string;
  /** The address to bind (the configuration's proxy_host, as `up` used). */
  host: string;
  self: SelfCommand;
  /** The watchdog's environment: `gatewayEnv` strips the RunPod key and other secrets from it. */
  env: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
}

export type GatewayRevival = (
  | { kind: 'restarted'; oldPid: number; pid: number; port: number; url: string }
  | { kind: 'failed'; oldPid: number; port: number; error: string }
  /** It died again soon after a restart: the next try waits (`retryInMs`). */
  | { kind: 'deferred'; oldPid: number; port: number; retryInMs: number }
) & { note: string };

/** Restarts (done or failed) in this window count towards the back-off. */
const REVIVAL_WINDOW_MS = 30 * 60_000;
const REVIVAL_BACKOFF_BASE_MS = 30_000;
const REVIVAL_BACKOFF_MAX_MS = 10 * 60_000;

/**
 * A gateway that keeps dying (a bad config, a port someone else took, a crash at each start)
 * is not restarted every pass for ever: after n restarts in the last 30 minutes the next waits
 * 30 s × 2^(n-1), at most 10 minutes. The first death is answered at once.
 */
export function revivalWaitMs(restartsAt: readonly number[], now: number): number {
  const recent = restartsAt.filter((at) => now - at < REVIVAL_WINDOW_MS);
  if (recent.length === 0) return 0;
  const wait = Math.min(REVIVAL_BACKOFF_BASE_MS * 2 ** (recent.length - 1), REVIVAL_BACKOFF_MAX_MS);
  return Math.max(0, Math.max(...recent) + wait - now);
}

/**
 * A gateway `up` started that has died (killed, crashed, out of memory) while its
 * pid file says it should run is started again on the port it had (from `gateway.url`, so a
 * free port chosen at first start is kept), with the same keys (the key file, or the configured
 * keys in the same environment and config file). Null when there is nothing to revive: no pid
 * file (never started, or `down` stopped it on purpose), still running, or run by a service
 * manager (which restarts it itself). Audited either way.
 */
export async function reviveGateway(
  state: StateDb,
  options: ReviveGatewayOptions,
): Promise<GatewayRevival | null> {
  const { home } = options;
  const info = readDaemon(home, 'gateway');
  const known = readGatewayUrl(home);
  if (info === null || info.running || info.service || known === undefined) return null;
  let url: URL;
  try {
    url = new URL(known);
  } catch {
    return null;
  }
  const https = url.protocol === 'https:';
  const port = Number(url.port || (https ? 443 : 80));
  const now = state.clock.now();
  const earlier = (
    state
      .stmt(
        "SELECT at FROM audit WHERE action IN ('restart_gateway', 'restart_gateway_failed') AND at > ? ORDER BY id DESC LIMIT 20",
      )
      .all(now - REVIVAL_WINDOW_MS) as Array<{ at: number }>
  ).map((r) => r.at);
  const wait = revivalWaitMs(earlier, now);
  if (wait > 0) {
    return {
      kind: 'deferred',
      oldPid: info.pid,
      port,
      retryInMs: wait,
      note: `the gateway died again (${earlier.length} restart(s) in the last 30 min): next try in ${Math.ceil(wait / 1000)} s; see ${logFile(home, 'gateway')}`,
    };
  }
  let revival: GatewayRevival;
  try {
    const started = await ensureGateway({
      home,
      host: options.host,
      port,
      https,
      self: options.self,
      env: options.env,
      ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
    });
    revival = {
      kind: 'restarted',
      oldPid: info.pid,
      pid: started.pid,
      port,
      url: started.url,
      note: `the gateway (pid ${info.pid}) had died: started again on port ${port} (pid ${started.pid})`,
    };
    appendAudit(state, {
      action: 'restart_gateway',
      reason: 'gateway_dead',
      details: { oldPid: info.pid, pid: started.pid, port },
    });
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    revival = {
      kind: 'failed',
      oldPid: info.pid,
      port,
      error,
      note: `the gateway (pid ${info.pid}) has died and could not be started again: ${error}`,
    };
    appendAudit(state, {
      action: 'restart_gateway_failed',
      reason: 'gateway_dead',
      details: { oldPid: info.pid, port, error },
    });
  }
  return revival;
}

/** A gateway a service manager runs writes its own pid file (marked) and address. */
export function announceServiceGateway(home: string, bindHost: string, port: number, https: boolean): void {
  writeOwnPidFile(home, 'gateway', { service: true });
  const host = clientHost(bindHost);
  writePrivateFile(
    gatewayUrlFile(home),
    `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}/v1\n`,
  );
}
