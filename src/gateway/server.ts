import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { buildApp, type GatewayApp } from './app.js';
import type { LimiterStore } from './rate-limit/limiter-store.js';
import { connectRedis } from './redis-client.js';
import type { RouteSource } from './upstream/route-source.js';
import type { UsageSink } from './usage-recorder.js';
import type { WakeControl } from './wake.js';

export interface RunningGateway extends GatewayApp {
  /** Base URL clients use, e.g. `http://127.0.0.1:8000/v1`. */
  baseUrl: string;
  port: number;
  /** Stops accepting, lets in-flight requests and streams finish up to `graceMs`, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts the gateway on `config.proxy_host:proxy_port` (HTTPS when `use_https`).
 *
 * @example
 *   const gw = await startGateway({ config, logger, routes, keys });
 *   console.log(gw.baseUrl); await gw.close();
 */
export async function startGateway(deps: {
  config: Config;
  logger: Logger;
  routes: RouteSource;
  keys: readonly string[];
  limiter?: LimiterStore;
  usage?: UsageSink;
  podInfo?: () => unknown;
  wake?: WakeControl;
}): Promise<RunningGateway> {
  const { config } = deps;
  const tls = config.use_https ? readTls(config) : undefined;
  const redis =
    config.redis_url === undefined ? undefined : await connectRedis(config.redis_url, deps.logger);
  const built = await buildApp({
    ...deps,
    ...(tls === undefined ? {} : { tls }),
    ...(redis === undefined ? {} : { redis }),
  });
  try {
    await built.app.listen({ host: config.proxy_host, port: config.proxy_port });
  } catch (err) {
    await built.app.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new AppError(
        'GW_PORT_IN_USE',
        `port ${config.proxy_port} on ${config.proxy_host} is already in use`,
        { hint: 'stop the other process (`runpod-llm down`?) or choose another port with --port / PORT' },
      );
    }
    if (code === 'EACCES')
      throw new AppError('GW_PORT_IN_USE', `not allowed to listen on port ${config.proxy_port}`, {
        hint: 'use a port above 1024 (no root needed)',
      });
    throw err;
  }
  const port = (built.app.server.address() as AddressInfo).port;
  const host = config.proxy_host.includes(':') ? `[${config.proxy_host}]` : config.proxy_host;
  const baseUrl = `${tls === undefined ? 'http' : 'https'}://${host}:${port}/v1`;
  return {
    ...built,
    baseUrl,
    port,
    async close(graceMs = config.shutdown_grace_ms) {
      const timer = setTimeout(() => built.app.server.closeAllConnections(), graceMs);
      timer.unref();
      try {
        await built.app.close();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function readTls(config: Config): { key: Buffer; cert: Buffer } {
  const read = (path: string | undefined, what: string): Buffer => {
    if (path === undefined)
      throw new AppError('CONFIG_TLS', `use_https is on but ${what} is not set`, {
        hint: 'set SSL_CERT and SSL_KEY to PEM files',
      });
    try {
      return readFileSync(path);
    } catch (err) {
      throw new AppError(
        'CONFIG_TLS',
        `cannot read the TLS ${what} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { hint: 'check the path and that this user can read it' },
      );
    }
  };
  const tls = {
    cert: read(config.ssl_cert, 'certificate (SSL_CERT)'),
    key: read(config.ssl_key, 'private key (SSL_KEY)'),
  };
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(tls.key.toString('latin1'))) {
    throw new AppError('CONFIG_TLS', `the TLS private key ${config.ssl_key ?? ''} is not a PEM private key`, {
      hint: 'SSL_KEY must point to a PEM file with a PRIVATE KEY block',
    });
  }
  if (!tls.cert.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw new AppError(
      'CONFIG_TLS',
      `the TLS certificate ${config.ssl_cert ?? ''} is not a PEM certificate`,
      { hint: 'SSL_CERT must point to a PEM file with a CERTIFICATE block' },
    );
  }
  return tls;
}
