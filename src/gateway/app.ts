import { randomBytes } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { installJsonParser } from './body-parser.js';
import { registerDashboard } from './dashboard/dashboard.js';
import {
  createClientErrorHandler,
  createConnectHandler,
  createFrameworkErrorHandler,
  requireHostHeader,
} from './client-error.js';
import type { CacheStore } from './cache/cache-store.js';
import { createResponseCache, type ResponseCache } from './cache/response-cache.js';
import './context.js';
import { gatewayError } from './errors.js';
import { createHealthProbe, type HealthProbe } from './health-probe.js';
import { authHook, clientLimitHook, errorHandler, type HookDeps, startHook } from './hooks.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics/gateway-metrics.js';
import { RecentStats } from './metrics/recent-stats.js';
import { createKeyVerifier } from './middleware/auth.js';
import { securityHeaders } from './middleware/security-headers.js';
import type { LimiterStore } from './rate-limit/limiter-store.js';
import { MemorySlidingLogStore } from './rate-limit/memory-store.js';
import { RedisSlidingLogStore } from './rate-limit/redis-store.js';
import type { Redis } from 'ioredis';
import { createProxyHandler, type ProxyDeps } from './routes/proxy.js';
import { API_ROUTES, fastifyPath } from './routes/route-table.js';
import { RedisTokenWindow } from './rate-limit/redis-token-window.js';
import { type TokenCounter, TokenWindow } from './rate-limit/token-window.js';
import { debugCacheHandler, healthHandler, metricsHandler } from './routes/status.js';
import { Balancer } from './upstream/balancer.js';
import { UpstreamPools } from './upstream/pools.js';
import type { RouteSource } from './upstream/route-source.js';
import type { UsageSink } from './usage-recorder.js';
import { createValidator } from './validation/validate.js';
import type { WakeControl } from './wake.js';

export interface GatewayAppDeps {
  config: Config;
  logger: Logger;
  routes: RouteSource;
  /** Gateway keys; empty with `config.auth = "none"` disables auth (loopback only, checked by config). */
  keys: readonly string[];
  clock?: Clock;
  limiter?: LimiterStore;
  metrics?: GatewayMetrics;
  /** TLS material; when present the server is HTTPS and HSTS is sent. */
  tls?: { key: Buffer | string; cert: Buffer | string };
  /** Start the background upstream probe (default true). */
  probe?: boolean;
  /** Records forwarded requests for the watchdog's idleness rule. */
  usage?: UsageSink;
  /** A cache store to use instead of the configured one (tests, a shared Redis store). */
  cacheStore?: CacheStore;
  /** The manager's view of the pod (status, GPU, cost, time left) for the dashboard, when known. */
  podInfo?: () => unknown;
  /** Shared Redis (REDIS_URL): the rate limit and the cache are then common to every replica. */
  redis?: Redis;
  /** Wake a pod when none is ready (`wake_on_request`, routes from the manager's state). */
  wake?: WakeControl;
}

export interface GatewayApp {
  app: FastifyInstance;
  balancer: Balancer;
  cache: ResponseCache | undefined;
  probe: HealthProbe;
  metrics: GatewayMetrics;
  pools: UpstreamPools;
}

/**
 * Builds the gateway (no listen): every dependency comes in, nothing is read from the
 * environment here. Tests build a fresh app per test and drive it with `inject()` or a real
 * socket via `app.listen({ port: 0 })`.
 *
 * @example
 *   const { app } = await buildApp({ config: defaultConfig(), logger, routes: staticRouteSource(url, key), keys: ['k'.repeat(32)] });
 *   await app.listen({ host: '127.0.0.1', port: 0 });
 */
export async function buildApp(deps: GatewayAppDeps): Promise<GatewayApp> {
  const { config, logger } = deps;
  if (config.auth === 'keys' && deps.keys.length === 0)
    throw new TypeError('buildApp: auth is "keys" but no gateway key was given');
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createGatewayMetrics();
  const pools = new UpstreamPools({
    connections: config.upstream.connections,
    connectTimeoutMs: config.upstream.connect_timeout_ms,
  });
  const prefix = randomBytes(3).toString('hex');
  let counter = 0;
  const rawErrorDeps = { logger, metrics, headers: securityHeaders(deps.tls !== undefined) };

  const app = Fastify({
    logger: false,
    bodyLimit: config.max_request_size,
    trustProxy: config.trusted_proxies.length > 0 ? config.trusted_proxies : false,
    requestIdHeader: false,
    genReqId: () => `${prefix}-${(++counter).toString(36)}`,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    serverFactory: (handler) => createNodeServer(requireHostHeader(rawErrorDeps, handler), config, deps.tls),
    clientErrorHandler: createClientErrorHandler(rawErrorDeps),
    frameworkErrors: createFrameworkErrorHandler(rawErrorDeps),
  });
  app.server.on('connect', createConnectHandler(rawErrorDeps));
  app.decorateRequest('ctx', null as never);
  app.decorateRequest('rawBody', undefined);
  installJsonParser(app, config.max_request_size);

  const recent = new RecentStats();
  const startedAt = clock.now();
  const hookDeps: HookDeps = {
    clock,
    logger,
    metrics,
    limiter: deps.limiter ?? createLimiter(config, logger, deps.redis),
    limit: config.rate_limit_requests,
    keyLimit: config.key_rate_limit_requests,
    tokenLimit:
      config.key_rate_limit_tokens === null
        ? undefined
        : { max: config.key_rate_limit_tokens, window: createTokenWindow(config, logger, deps.redis) },
    windowMs: config.rate_limit_window * 1000,
    headers: securityHeaders(deps.tls !== undefined),
    verify: config.auth === 'none' ? undefined : createKeyVerifier(deps.keys),
    usage: deps.usage,
    recent,
  };
  app.addHook('onRequest', startHook(hookDeps));
  await app.register(cors, {
    origin: config.allowed_origins,
    methods: ['GET', 'POST'],
    maxAge: 600,
    credentials: false,
    strictPreflight: true,
  });
  app.addHook('onRequest', clientLimitHook(hookDeps));
  app.setErrorHandler(errorHandler(hookDeps));
  app.setNotFoundHandler((request) => {
    if (!['GET', 'POST', 'HEAD', 'OPTIONS'].includes(request.method)) {
      throw gatewayError(
        'GW_METHOD_NOT_ALLOWED',
        `method ${request.method} is not allowed; the API takes GET and POST`,
        { headers: { allow: 'GET, POST, OPTIONS' } },
      );
    }
    throw gatewayError(
      'GW_NOT_FOUND',
      `unknown URL: ${request.method} ${request.url.split('?')[0]?.slice(0, 200) ?? ''}`,
    );
  });

  const cache = createResponseCache(config, {
    clock,
    metrics,
    logger,
    ...(deps.cacheStore === undefined ? {} : { store: deps.cacheStore }),
    ...(deps.redis === undefined ? {} : { redis: deps.redis }),
  });
  const probe = createHealthProbe({
    routes: deps.routes,
    pools,
    intervalMs: config.health_probe_interval_ms,
    timeoutMs: 5_000,
    logger,
    now: () => clock.now(),
    onResult: (r) => balancer.observe(r.routeId, r.reachable),
  });
  const balancer = new Balancer(deps.routes, { ejectAfter: 3, cooldownMs: 30_000, clock });
  // Routes come and go (pods recreated, woken, stopped): their pools and health entries go with them.
  deps.routes.onChange?.((routes) => {
    balancer.retain(routes);
    void pools.retain(routes);
  });
  const proxyDeps: ProxyDeps = {
    balancer,
    pools,
    validate: createValidator({
      maxMessages: config.max_messages,
      maxTokens: config.max_tokens,
      maxN: config.max_n,
      maxContentLength: config.max_content_length,
      contentPolicy: config.content_policy,
    }),
    metrics,
    timeouts: {
      connectMs: config.upstream.connect_timeout_ms,
      firstByteMs: config.upstream.first_byte_timeout_ms,
      idleMs: config.upstream.idle_timeout_ms,
    },
    maxResponseBytes: config.upstream.max_response_bytes,
    cache,
    wake: deps.wake,
  };
  const auth = authHook(hookDeps);
  const api = { kind: 'api' as const };
  // Every API route comes from the one table the pod guard's allow-list is checked against.
  for (const spec of API_ROUTES) {
    app.route({
      method: spec.method,
      url: fastifyPath(spec.path),
      config: { ...api, label: spec.label },
      onRequest: auth,
      handler: createProxyHandler(proxyDeps, spec),
    });
  }
  app.get(
    '/health',
    { config: { kind: 'health', label: 'health' } },
    healthHandler({ probe, startedAt, now: () => clock.now() }),
  );
  const statsDeps = {
    metrics,
    recent,
    cache,
    startedAt,
    now: () => clock.now(),
    ...(deps.podInfo === undefined ? {} : { pod: deps.podInfo }),
  };
  app.get(
    '/metrics',
    { config: { kind: 'metrics', label: 'metrics' }, onRequest: config.metrics_require_auth ? auth : [] },
    metricsHandler(statsDeps),
  );
  registerDashboard(app);
  if (config.enable_profiling && config.auth === 'keys') {
    app.get(
      '/debug/cache',
      { config: { kind: 'metrics', label: 'debug' }, onRequest: auth },
      debugCacheHandler(cache),
    );
  }

  if (deps.probe ?? true) app.addHook('onReady', async () => probe.start());
  app.addHook('onClose', async () => {
    probe.stop();
    deps.usage?.close();
    await cache?.store.close();
    await hookDeps.limiter.close?.();
    await pools.close();
    await deps.routes.close?.();
  });
  return { app, probe, metrics, pools, cache, balancer };
}

/** The limiter the configuration asks for: shared in Redis (with a local fallback) or in memory. */
function createLimiter(config: Config, logger: Logger, redis: Redis | undefined): LimiterStore {
  const local = new MemorySlidingLogStore();
  if (redis === undefined) return local;
  return new RedisSlidingLogStore({
    client: redis,
    prefix: config.redis_prefix,
    fallback: config.redis_limiter_fallback,
    local,
    logger,
  });
}

/** `key_rate_limit_tokens`' window: shared in Redis (every replica holds a key to one budget) or in memory. */
function createTokenWindow(config: Config, logger: Logger, redis: Redis | undefined): TokenCounter {
  const windowMs = config.rate_limit_window * 1000;
  const local = new TokenWindow(windowMs);
  if (redis === undefined) return local;
  return new RedisTokenWindow({ client: redis, prefix: config.redis_prefix, windowMs, local, logger });
}

/**
 * The Node server with slow-client protection Fastify leaves off by default: all headers within
 * `headers_timeout_ms`, the whole request within `request_timeout_ms` (responses, and so
 * streams, are not limited by these), checked every second rather than Node's default 30 s.
 */
function createNodeServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  config: Config,
  tls: GatewayAppDeps['tls'],
): Server {
  const options = {
    headersTimeout: config.headers_timeout_ms,
    requestTimeout: config.request_timeout_ms,
    connectionsCheckingInterval: 1_000,
    keepAliveTimeout: config.keep_alive_timeout_ms,
    noDelay: true,
    maxHeaderSize: 16 * 1024,
    // requireHostHeader (client-error.ts) answers a missing Host with the envelope instead.
    requireHostHeader: false,
  };
  // Node's headers timeout also closes connections that send nothing, but only once the TLS
  // handshake is done: a silent TLS client gets no longer for the handshake (Node's default: 120 s).
  const server =
    tls === undefined
      ? createHttpServer(options, handler)
      : createHttpsServer(
          { ...options, handshakeTimeout: config.headers_timeout_ms, key: tls.key, cert: tls.cert },
          handler,
        );
  server.keepAliveTimeout = config.keep_alive_timeout_ms;
  return server;
}
