import type { AddressInfo } from 'node:net';
import { type ConfigInput, defaultConfig } from '../../src/config/schema.js';
import {
  startVllmStandin,
  type VllmStandin,
  type VllmStandinOptions,
} from '../../src/emulator/vllm-standin.js';
import { buildApp, type GatewayApp } from '../../src/gateway/app.js';
import type { LimiterStore } from '../../src/gateway/rate-limit/limiter-store.js';
import { type RouteSource, staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import type { Clock } from '../../src/shared/clock.js';
import { captureLogs, type CapturedLogs } from './log-capture.js';

export const GATEWAY_KEY = 'gw_test_key_5f1c9a7e3b2d4c6e8a0b';
export const POD_KEY = 'pod_test_key_9d8c7b6a5f4e3d2c1b0a';
export const MODEL = 'test-model';

export interface TestGateway extends GatewayApp {
  url: string;
  /** `${url}/v1` */
  baseUrl: string;
  logs: CapturedLogs;
  pod: VllmStandin | undefined;
  close(): Promise<void>;
  /** fetch with the gateway key. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

export interface TestGatewayOptions {
  config?: ConfigInput;
  pod?: Partial<VllmStandinOptions> | false;
  routes?: RouteSource;
  keys?: string[];
  clock?: Clock;
  limiter?: LimiterStore;
  tls?: { key: string; cert: string };
  listen?: boolean;
  /** Start the background upstream probe (default false: it would add requests to the pod's log). */
  probe?: boolean;
}

/**
 * A real gateway on 127.0.0.1:0 in front of a real vLLM stand-in on its own port, with logs
 * captured in memory. Close it in `after()`.
 */
export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const pod =
    options.pod === false
      ? undefined
      : await startVllmStandin({ model: MODEL, apiKey: POD_KEY, ...options.pod });
  const routes =
    options.routes ??
    (pod === undefined
      ? staticRouteSource('http://127.0.0.1:9/v1', POD_KEY)
      : staticRouteSource(`${pod.url}/v1`, POD_KEY, MODEL));
  const logs = captureLogs();
  const built = await buildApp({
    config: defaultConfig({ proxy_port: 0, health_probe_interval_ms: 60_000, ...options.config }),
    logger: logs.logger,
    routes,
    keys: options.keys ?? [GATEWAY_KEY],
    probe: options.probe ?? false,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.limiter === undefined ? {} : { limiter: options.limiter }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  let url = '';
  if (options.listen ?? true) {
    await built.app.listen({ host: '127.0.0.1', port: 0 });
    url = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${(built.app.server.address() as AddressInfo).port}`;
  }
  return {
    ...built,
    url,
    baseUrl: `${url}/v1`,
    logs,
    pod,
    async close() {
      await built.app.close();
      await pod?.close();
    },
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${GATEWAY_KEY}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      return fetch(`${url}${path}`, { ...init, headers, body: body ?? null });
    },
  };
}

export function chatBody(content = 'hello', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, messages: [{ role: 'user', content }], ...extra };
}
