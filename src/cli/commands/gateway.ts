import { once } from 'node:events';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { resolveGatewayKeys } from '../../gateway/gateway-keys.js';
import { routeSourceFor } from '../../gateway/route-source-factory.js';
import { startGateway } from '../../gateway/server.js';
import { readDaemon, removePidFile } from '../../daemons/detached-process.js';
import { announceServiceGateway } from '../../daemons/gateway-daemon.js';
import { configuredLogger, type ConfiguredLogger } from '../../logs/persisted-logger.js';
import { ensurePrivateDir } from '../../shared/secret-file.js';
import { requireConfig } from '../config-problems.js';
import { type CliIo, line } from '../io.js';
import type { GatewayFlags } from '../command-options.js';

/** Secrets the gateway must not hold or hand down to anything it spawns. */
const FOREIGN_SECRETS = ['RUNPOD_API_KEY', 'HF_TOKEN'];

/**
 * `runpod-llm gateway`: serve until SIGINT/SIGTERM, then drain (up to shutdown_grace_ms).
 * Returns the exit code; never exits by itself.
 */
export async function runGatewayCommand(flags: GatewayFlags, io: CliIo): Promise<number> {
  const result = loadConfig({
    env: io.env,
    ...(flags.config === undefined ? {} : { configPath: flags.config }),
    flags: {
      proxy_host: flags.host,
      proxy_port: flags.port,
      'upstream.url': flags.upstream,
      log_level: flags.logLevel,
    },
  });
  const config = requireConfig(result, io);
  for (const name of FOREIGN_SECRETS) {
    if (io.env[name] !== undefined) {
      line(
        io.stderr,
        `warning: ${name} is set in the gateway's environment; the gateway never needs it (a compromised gateway could use it). Removed from this process's environment; prefer starting the gateway with \`runpod-llm up\`.`,
      );
      delete io.env[name];
    }
  }
  const log = gatewayLogger(config);
  const { logger } = log;
  ensurePrivateDir(config.home as string);
  const keys = resolveGatewayKeys(config);
  const { routes, usage, podInfo, wake, description } = routeSourceFor(config, logger);
  const gateway = await startGateway({
    config,
    logger,
    routes,
    keys: keys.keys,
    ...(usage === undefined ? {} : { usage }),
    ...(podInfo === undefined ? {} : { podInfo }),
    ...(wake === undefined ? {} : { wake }),
  });
  line(io.stderr, `runpod-llm gateway listening on ${gateway.baseUrl} (${description})`);
  if (keys.source === 'generated')
    line(io.stderr, `gateway key (shown once; stored 0600 in ${keys.file ?? ''}):\n  ${keys.keys[0] ?? ''}`);
  else if (keys.source === 'file') line(io.stderr, `gateway key: stored in ${keys.file ?? ''}`);
  else if (keys.source === 'none')
    line(io.stderr, 'warning: gateway auth is off (auth: "none"); any local process can use the model');
  logger.info({ baseUrl: gateway.baseUrl, upstream: description, auth: keys.source }, 'gateway started');
  // Under a service manager: `up` finds this gateway (and reuses it) and `down` leaves it.
  if (flags.service === true)
    announceServiceGateway(
      config.home as string,
      config.proxy_host,
      gateway.port,
      gateway.baseUrl.startsWith('https'),
    );

  if (!io.signal.aborted) await once(io.signal, 'abort');
  line(
    io.stderr,
    `shutting down: letting in-flight requests finish (up to ${config.shutdown_grace_ms / 1000} s)`,
  );
  await gateway.close();
  logger.info('gateway stopped');
  if (flags.service === true && readDaemon(config.home as string, 'gateway')?.pid === process.pid)
    removePidFile(config.home as string, 'gateway');
  await log.close();
  return 0;
}

/**
 * The gateway's logger: stdout, or `log_file` rotated and expired (the detached gateway `up`
 * starts writes `<home>/logs/gateway.log`); client addresses as `log_client_ip` says.
 */
export function gatewayLogger(config: Config): ConfiguredLogger {
  return configuredLogger(config);
}
